package consul

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/benchscale"
)

// TestSharedSessionLeaderHeap bounds what the backend keeps on the heap for
// each resource led on one shared session, through Consul: the claim, the
// state of its key, its place in the lease's claims, the record watch told
// by its root's one recursive read and that read's listing, and the claim's
// Info, which an elector keeps for its campaign and its term (asked twice,
// as the elector does). The claims are driven as the engine drives them,
// whose own share is not counted.
func TestSharedSessionLeaderHeap(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory makes every allocation larger")
	}
	const n = 1000
	// Measured at 971-1009 bytes per leader; the bound fails when about 70
	// bytes more stay per leader (a copy of Info's Fields each time it is
	// asked for adds 336; the listing's decoded pairs kept add about 280;
	// a sync.Map entry per key adds about 110).
	const maxPerLeader = 1075
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	client, err := api.NewClient(&api.Config{Address: srv.Addr})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBackend(client, Options{Options: election.Options{Logger: slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := b.NewLease(ctx, election.LeaseParams{TTL: 15 * time.Second})
	if err != nil {
		t.Fatalf("NewLease: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(context.Background()); err != nil {
			t.Errorf("Close of the lease: %v", err)
		}
	})
	var told sync.Mutex
	changes := 0
	changed := func(election.Record, error) {
		told.Lock()
		changes++
		told.Unlock()
	}
	type leader struct {
		c     election.Claim
		rev   uint64
		infos [2]election.SessionInfo
		stop  func()
	}
	claim := func(resource string) leader {
		c, err := l.Claim(election.SessionParams{Resource: resource, ID: "p", TTL: 15 * time.Second})
		if err != nil {
			t.Fatalf("Claim %s: %v", resource, err)
		}
		acq, err := c.Acquire(ctx)
		if err != nil || acq.Session != l.Info().ID {
			t.Fatalf("Acquire %s: %+v, %v; want it held by the lease", resource, acq.Record, err)
		}
		return leader{c: c, rev: acq.Revision, infos: [2]election.SessionInfo{c.Info(), c.Info()}}
	}
	watch := func(resource string, ld *leader) { ld.stop = b.WatchRecord(resource, ld.rev, changed) }
	stopAll := func(lds []leader) {
		for i := range lds {
			if lds[i].stop != nil {
				lds[i].stop()
			}
		}
	}

	// The first leaders warm the client, its connections and the decoders
	// up; their watches stop, and with them the recursive read.
	warm := make([]leader, ListThreshold+1)
	for i := range warm {
		warm[i] = claim(fmt.Sprintf("heap-warm-%d", i))
		watch(fmt.Sprintf("heap-warm-%d", i), &warm[i])
	}
	waitListing(t, b, "service/", len(warm))
	stopAll(warm)

	lds := make([]leader, n)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("heap-%04d", i)
	}
	before := benchscale.HeapLive()
	for i := range lds {
		lds[i] = claim(names[i])
	}
	for i := range lds {
		watch(names[i], &lds[i])
	}
	waitListing(t, b, "service/", n)
	grown := benchscale.HeapLive() - before
	runtime.KeepAlive(lds)
	t.Logf("%d leaders on a shared session keep %d KB of the backend's heap, %.2f KB each", n, grown>>10, float64(grown)/n/1024)
	if per := grown / n; per > maxPerLeader {
		t.Errorf("the backend keeps %.2f KB of heap per leader on a shared session; want at most %.2f KB", float64(grown)/n/1024, float64(maxPerLeader)/1024)
	}
	if listed, loops := recordCounts(b, "service/"); listed != n || loops != 0 {
		t.Errorf("%d watches on the recursive read and %d on loops of their own; want %d and none", listed, loops, n)
	}
	told.Lock()
	if changes != 0 {
		t.Errorf("the watches were told %d changes; want none", changes)
	}
	told.Unlock()
	stopAll(lds)
}

// waitListing waits until the recursive read of root keeps a listing of at
// least keys keys.
func waitListing(t *testing.T, b *Backend, root string, keys int) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b.watches.mu.Lock()
		g := b.watches.groups[root]
		got := 0
		if g != nil {
			got = len(g.snap)
		}
		b.watches.mu.Unlock()
		if got >= keys {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recursive read of %q lists %d keys after 30 s; want %d", root, got, keys)
		}
	}
}
