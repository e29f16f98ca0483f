//go:build go1.25

package election_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// TestStepDownCountsFromRenewalStart: the store's replies to the leader
// arrive 5 s late, then the leader is cut off. The store keeps its session
// TTL after the last renewal reached it; the leader's deadline counts from
// the start of that renewal, not from its late reply, and so it steps down
// while the store still holds its session and before another candidate
// leads.
func TestStepDownCountsFromRenewalStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		const ttl = 10 * time.Second
		opts := func(id string) election.Options {
			return election.FixedRenewals(election.Options{Resource: "r", ID: id, TTL: ttl, RenewInterval: time.Second, RequestTimeout: 7 * time.Second})
		}
		ch := make(chan election.Leadership, 10)
		type end struct {
			at        time.Time
			cause     error
			storeSaid string // the store's leader when the term ended
		}
		ended := make(chan end, 1)
		startElector(t, store, opts("a"), func(ctx context.Context, l election.Leadership) error {
			ch <- l
			if l.IsLeader {
				<-ctx.Done()
				id, _ := store.Leader("r")
				ended <- end{at: time.Now(), cause: context.Cause(ctx), storeSaid: id}
			}
			return nil
		})
		waitLeader(t, ch)
		start := time.Now()
		bch := make(chan election.Leadership, 10)
		startElector(t, store, opts("b"), blockingLeader(bch, nil))

		// The renewal at +1 s reaches the store at once and is answered
		// at +6 s; the next one would start at +7 s.
		store.Delay("a", 5*time.Second)
		time.Sleep(6*time.Second + 500*time.Millisecond)
		if id, _ := store.Leader("r"); id != "a" {
			t.Fatalf("with replies 5 s late, the store shows leader %q; want a", id)
		}
		select {
		case e := <-ended:
			t.Fatalf("a stepped down at +%v with replies 5 s late (cause %v); want it to lead on", e.at.Sub(start), e.cause)
		default:
		}
		store.Cut("a")

		e := <-ended
		want := start.Add(time.Second + ttl - election.StepDownMargin(ttl)) // +10 s
		if !e.at.Equal(want) {
			t.Errorf("stepped down at +%v, want +%v: the start of the last renewal (+1 s) + TTL - StepDownMargin(TTL)", e.at.Sub(start), want.Sub(start))
		}
		if e.storeSaid != "a" {
			t.Errorf("when a stepped down, the store showed leader %q: its session had expired first", e.storeSaid)
		}
		if !errors.Is(e.cause, election.ErrLeaseExpired) {
			t.Errorf("cause %v, want ErrLeaseExpired", e.cause)
		}
		// The store frees the leadership TTL after the renewal at +1 s, and b
		// takes it then.
		l := waitLeader(t, bch)
		if got := time.Since(start); got != time.Second+ttl {
			t.Errorf("b leads at +%v, want +%v", got, time.Second+ttl)
		}
		if l.LeaderID != "b" {
			t.Errorf("leader %q, want b", l.LeaderID)
		}
		store.Heal("a")
	})
}
