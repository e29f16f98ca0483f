//go:build go1.25

package election_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// TestSharedSessionAcquireLimit: on a backend that is an AcquireLimiter, a
// shared session has at most MaxAcquiring acquisitions in flight, and its
// other electors wait their turn before their requests begin: 12 resources
// whose acquisitions each take 40 % of RequestTimeout, 3 at a time, take
// 160 % of it for the last turn, and all lead without an error.
func TestSharedSessionAcquireLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		var inflight, peak atomic.Int64
		conn := &acquireHook{Conn: store.Connect("a"), max: 3, hook: func(ctx context.Context, acquire func(context.Context) (election.Acquisition, error)) (election.Acquisition, error) {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			return acquire(ctx)
		}}
		o := election.SessionOptions{TTL: 15 * time.Second}
		store.Delay("a", o.WithDefaults().RequestTimeout*2/5)
		ss, err := election.NewSharedSession(conn, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := ss.Close(context.Background()); err != nil {
				t.Errorf("Close of the session: %v", err)
			}
		})
		g := newTermLog()
		rs := resources(12)
		startOn(t, ss, "a", rs, g.handler)
		time.Sleep(time.Minute)
		synctest.Wait()
		for _, r := range rs {
			if led, _ := g.terms(r); led != 1 {
				t.Errorf("%s: %d terms, want 1", r, led)
			}
			if l := g.lastCall(r); l.Err != nil {
				t.Errorf("%s: told %v", r, l.Err)
			}
		}
		if p := peak.Load(); p != 3 {
			t.Errorf("%d acquisitions in flight at the most; want MaxAcquiring, 3", p)
		}
	})
}
