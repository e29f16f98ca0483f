package consul

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance/testserver"
)

// TestWatchChangedBeforeListing: a Watch call served by its root's
// recursive read, waiting on a revision older than the last listing shows
// of its key, is answered at once, with the revision the listing showed
// (which the group keeps, not the pair): a key the listing showed, and a
// key it no longer shows, free. A call waiting on that revision then waits.
func TestWatchChangedBeforeListing(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	client, _ := countingClient(t, srv)
	b, err := NewBackend(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	// Record watches of more than ListThreshold keys keep the root's
	// recursive read running.
	for i := range ListThreshold + 1 {
		_, stop := watchRecord(b, fmt.Sprintf("changed-before-%d", i), 1)
		t.Cleanup(stop)
	}
	key := DefaultKey("changed-before-x")
	if _, err := client.KV().Put(&api.KVPair{Key: key, Value: encodeRecord("old", nil, 0)}, nil); err != nil {
		t.Fatal(err)
	}
	pair, _, err := client.KV().Get(key, nil)
	if err != nil || pair == nil {
		t.Fatalf("Get %s: %v, %v", key, pair, err)
	}
	rev := pair.ModifyIndex
	listedAt := func(ok func(rev uint64, listed bool) bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			b.watches.mu.Lock()
			g := b.watches.groups["service/"]
			var r uint64
			var listed bool
			kept := g != nil && g.snap != nil
			if kept {
				r, listed = g.snap[key]
			}
			b.watches.mu.Unlock()
			if kept && ok(r, listed) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the listing does not show %s as expected after 10 s", key)
			}
		}
	}
	watch := func(after uint64, wait time.Duration) (uint64, bool, time.Duration) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), wait+5*time.Second)
		defer cancel()
		start := time.Now()
		rec, err := b.Watch(ctx, "changed-before-x", after, wait)
		if err != nil {
			t.Fatalf("Watch from %d: %v", after, err)
		}
		return rec.Revision, rec.Free(), time.Since(start)
	}

	listedAt(func(r uint64, listed bool) bool { return listed && r == rev })
	if got, _, took := watch(rev-1, 20*time.Second); got != rev || took > 2*time.Second {
		t.Errorf("Watch from before the listed revision %d: revision %d after %v; want %d at once", rev, got, took, rev)
	}

	if _, err := client.KV().Delete(key, nil); err != nil {
		t.Fatal(err)
	}
	listedAt(func(_ uint64, listed bool) bool { return !listed })
	gone, free, took := watch(rev, 20*time.Second)
	if gone <= rev || !free || took > 2*time.Second {
		t.Errorf("Watch of a key the listing no longer shows, from %d: revision %d (free %v) after %v; want a later free revision at once", rev, gone, free, took)
	}
	if got, _, took := watch(gone, time.Second); got != gone || took < 900*time.Millisecond {
		t.Errorf("Watch from the revision seen, %d: revision %d after %v; want the same after the wait of 1 s", gone, got, took)
	}
}
