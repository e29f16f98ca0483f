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

// TestPhase: Phase follows the campaign through its named states.
func TestPhase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		opts := func(id string) election.Options {
			return election.Options{Resource: "r", ID: id, TTL: 10 * time.Second, RetryInterval: 5 * time.Second}
		}
		block := func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				<-ctx.Done()
			}
			return nil
		}
		a, err := memory.New(store, opts("a"))
		if err != nil {
			t.Fatal(err)
		}
		if got := a.Phase(); got != election.PhaseStopped {
			t.Errorf("before Start: %v, want stopped", got)
		}
		if err := a.Start(context.Background(), block); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		b := startElector(t, store, opts("b"), block)
		synctest.Wait()
		if got := a.Phase(); got != election.PhaseLeading {
			t.Errorf("leader: %v, want leading", got)
		}
		if got := b.Phase(); got != election.PhaseFollowing {
			t.Errorf("follower: %v, want following", got)
		}
		if err := a.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := a.Phase(); got != election.PhaseFollowing {
			t.Errorf("after Release, with b leading: %v, want following", got)
		}
		if got := b.Phase(); got != election.PhaseLeading {
			t.Errorf("b after a's Release: %v, want leading", got)
		}
		if err := b.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		// b holds off for RetryInterval; a, which released 0 s ago too,
		// also holds off: nobody leads for the rest of a's hold-off.
		if got := b.Phase(); got != election.PhaseHoldingOff {
			t.Errorf("b after its Release: %v, want holding off", got)
		}
		time.Sleep(6 * time.Second)
		synctest.Wait()
		if pa, pb := a.Phase(), b.Phase(); (pa == election.PhaseLeading) == (pb == election.PhaseLeading) {
			t.Errorf("after the hold-offs: a %v, b %v; want one leading", pa, pb)
		}
		if err := a.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := a.Phase(); got != election.PhaseStopped {
			t.Errorf("after Close: %v, want stopped", got)
		}
		if got := election.Phase(42).String(); got != "Phase(42)" {
			t.Errorf("Phase(42).String() = %q", got)
		}
	})
}
