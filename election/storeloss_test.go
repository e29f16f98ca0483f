//go:build go1.25

package election_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// TestTermsGrowAfterStoreLoss: a store that loses its data issues terms
// from the start again; an elector that saw a higher term raises the
// store's floor before it leads, so no handler is ever given a term lower
// than one announced before.
func TestTermsGrowAfterStoreLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		var mu sync.Mutex
		var leads []uint64 // the terms of every leader call, in order
		h := func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				mu.Lock()
				leads = append(leads, l.Term)
				mu.Unlock()
				<-ctx.Done()
			}
			return nil
		}
		opts := func(id string) election.Options {
			return election.Options{Resource: "r", ID: id, TTL: 10 * time.Second}
		}
		a := startElector(t, store, opts("a"), h)
		synctest.Wait()
		startElector(t, store, opts("b"), h)
		// A few handovers, so that the terms climb.
		for range 5 {
			time.Sleep(time.Second)
			synctest.Wait()
			_ = a.Release(context.Background())
			time.Sleep(time.Second)
			synctest.Wait()
		}
		_, before := store.Leader("r")
		store.Reset()
		time.Sleep(time.Minute)
		synctest.Wait()
		id, after := store.Leader("r")
		if id == "" {
			t.Fatal("no leader a minute after the store lost its data")
		}
		if after <= before {
			t.Errorf("term %d after the loss, %d before", after, before)
		}
		mu.Lock()
		defer mu.Unlock()
		for i := 1; i < len(leads); i++ {
			if leads[i] <= leads[i-1] {
				t.Errorf("leader calls had terms %v: not increasing", leads)
				break
			}
		}
	})
}
