//go:build go1.25

package election_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

type deadlineTestKey struct{}

// TestTermDeadline: a term's context, and contexts derived from it, report
// the term's step-down deadline as it stands: (start of the last successful
// renewal) + TTL - StepDownMargin(TTL), moved on by each renewal; the term
// ends at it; other contexts report none.
func TestTermDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		const ttl = 15 * time.Second
		stepDown := ttl - election.StepDownMargin(ttl)
		ctxs := make(chan context.Context, 1)
		ended := make(chan time.Time, 1)
		startElector(t, store, election.FixedRenewals(election.Options{Resource: "r", ID: "a", TTL: ttl}),
			func(ctx context.Context, l election.Leadership) error {
				if l.IsLeader {
					ctxs <- ctx
					<-ctx.Done()
					ended <- time.Now()
				}
				return nil
			})
		ctx := <-ctxs
		start := time.Now() // the session was made, and the term began, now
		derived, cancel := context.WithCancel(ctx)
		defer cancel()
		valued := context.WithValue(ctx, deadlineTestKey{}, 1)

		check := func(when string, want time.Time) {
			t.Helper()
			for name, c := range map[string]context.Context{"term": ctx, "WithCancel": derived, "WithValue": valued} {
				got, ok := election.TermDeadline(c)
				if !ok || !got.Equal(want) {
					t.Errorf("%s: TermDeadline(%s context) = %v, %v; want +%v, true", when, name, got.Sub(start), ok, want.Sub(start))
				}
			}
		}
		check("at the start", start.Add(stepDown))
		// Renewals every TTL/3 = 5 s move it on.
		time.Sleep(5*time.Second + time.Millisecond)
		check("after the renewal at +5 s", start.Add(5*time.Second+stepDown))
		time.Sleep(5 * time.Second)
		check("after the renewal at +10 s", start.Add(10*time.Second+stepDown))
		store.Cut("a")
		want := start.Add(10*time.Second + stepDown)
		if got := <-ended; !got.Equal(want) {
			t.Errorf("the term ended at +%v, want its deadline +%v", got.Sub(start), want.Sub(start))
		}
		check("after the term ended", want)
		store.Heal("a")

		if d, ok := election.TermDeadline(context.Background()); ok {
			t.Errorf("TermDeadline(context.Background()) = %v, true; want false", d)
		}
	})
}
