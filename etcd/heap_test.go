package etcd

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/benchscale"
)

// TestSharedLeaseLeaderHeap bounds what the backend keeps on the heap for
// each resource led on one lease, as an elector on a SharedSession leads
// it: the claim, two descriptions of it (the engine asks for one as the
// campaign begins and one as the term does, and keeps the term's; both are
// held here), the state of the election in its hub, its
// queue in the group's watch of the prefix root, and the leader's watch of
// its record. The engine's own share is not counted: the test calls the
// backend as the engine does, and keeps what the engine would.
func TestSharedLeaseLeaderHeap(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory makes every allocation larger")
	}
	const n = 2000
	// Measured at 1,484-1,520 bytes per leader, 672 of which are the two
	// Fields maps of the claim's descriptions; the bound fails when about
	// 40 bytes more stay per leader (a channel does, and so does the
	// decoded key-value of the leader's key).
	const maxPerLeader = 1540
	srv := startEtcd(t)
	client := newClient(t, srv.Endpoint())
	b := newBackend(t, client)
	ctx := testCtx(t, 2*time.Minute)
	l, err := b.NewLease(ctx, election.LeaseParams{TTL: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(context.Background()); err != nil {
			t.Errorf("close lease: %v", err)
		}
	})
	id := l.Info().ID

	// What the engine keeps of each leader, allocated before the measure.
	type kept struct {
		c         election.Claim
		pre, post election.SessionInfo
		rec       election.Record
		stop      func()
	}
	leaders := make([]kept, n+1)
	rs := make([]string, n+1)
	for i := range rs {
		rs[i] = fmt.Sprintf("heap-%04d", i)
	}
	changed := func(r election.Record, err error) {
		t.Errorf("a leader's record changed: %+v, %v", r, err)
	}
	t.Cleanup(func() {
		for _, k := range leaders {
			if k.stop != nil {
				k.stop()
			}
		}
	})
	lead := func(i int) {
		t.Helper()
		k := &leaders[i]
		if k.c, err = l.Claim(election.SessionParams{Resource: rs[i], ID: "p", TTL: 15 * time.Second}); err != nil {
			t.Fatal(err)
		}
		k.pre = k.c.Info()
		acq, err := k.c.Acquire(ctx)
		if err != nil || acq.Record.Session != id {
			t.Fatalf("Acquire %s = %+v, %v; want it held by lease %s", rs[i], acq.Record, err, id)
		}
		k.rec, k.post = acq.Record, k.c.Info()
		k.stop = b.WatchRecord(rs[i], acq.Record.Revision, changed)
	}
	// The first starts the group's watch, which has loaded the root once
	// its state of the first election is known.
	lead(n)
	queued := func(k int) func() bool {
		return func() bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			got := 0
			for _, e := range b.group.elects {
				got += len(e.queue)
			}
			return got == k
		}
	}
	waitUntil(t, 10*time.Second, queued(1))

	before := benchscale.HeapLive()
	for i := range n {
		lead(i)
	}
	waitUntil(t, 30*time.Second, queued(n+1))
	grown := benchscale.HeapLive() - before
	runtime.KeepAlive(leaders)
	t.Logf("%d leaders keep %d KB of the backend's heap, %d bytes each", n, grown>>10, grown/n)
	if per := grown / n; per > maxPerLeader {
		t.Errorf("the backend keeps %d bytes of heap per leader; want at most %d", per, maxPerLeader)
	}
}
