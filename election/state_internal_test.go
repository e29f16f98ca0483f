//go:build go1.25

package election

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestIsLeaderSeesPassedDeadline: IsLeader turns false the moment the
// step-down deadline passes, by itself: here no timer enforces the
// deadline, as after a process resumed from a stop whose timers have not
// run yet.
func TestIsLeaderSeesPassedDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sd := newStepDown(time.Now().Add(time.Second))
		tc, cancel := newTermContext(context.Background(), sd, expiredCause, nil)
		defer cancel(nil)
		el := &Elector{e: &engine{}}
		el.e.state.Store(&status{l: Leadership{Resource: "r", LeaderID: "a", IsLeader: true, Term: 7}, term: tc})

		time.Sleep(time.Second - time.Nanosecond)
		if !el.IsLeader() || !el.State().IsLeader || el.State().Term != 7 {
			t.Fatalf("before the deadline: IsLeader %v, State %+v", el.IsLeader(), el.State())
		}
		time.Sleep(time.Nanosecond)
		if el.IsLeader() {
			t.Error("IsLeader true at the deadline")
		}
		if s := el.State(); s.IsLeader || s.LeaderID != "" || s.Term != 0 || s.Resource != "r" {
			t.Errorf("State at the deadline = %+v, want the step-down notification's", s)
		}
	})
}
