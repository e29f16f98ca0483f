package leaderprom_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
	leaderprom "github.com/consul-leader/consul-leader/prometheus"
)

// TestHandlerOverrun: a leader handler that keeps running after its term
// ended is counted once, and shows as overrunning until it returns.
func TestHandlerOverrun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		p := newProc(t, leaderprom.Options{})
		unblock := make(chan struct{})
		var calls atomic.Int32
		p.startElector(t, store, election.Options{Resource: "r", ID: "a", TTL: ttl}, func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader && calls.Add(1) == 1 {
				<-unblock // ignores the end of its term
			}
			return nil
		})
		synctest.Wait()
		store.DeleteRecord("r") // the term ends
		time.Sleep(3 * ttl)     // three reports of the overrun
		synctest.Wait()
		p.expect(t,
			`leader_election_handler_overruns_total{resource="r"} 1`,
			`leader_election_handlers_overrunning{resource="r"} 1`,
			`leader_election_is_leader{resource="r"} 0`)
		close(unblock)
		synctest.Wait()
		p.expect(t,
			`leader_election_handler_overruns_total{resource="r"} 1`,
			`leader_election_handlers_overrunning{resource="r"} 0`)
	})
}
