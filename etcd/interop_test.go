package etcd

import (
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/consul-leader/consul-leader/election"
)

// TestInteropWithConcurrencyElection runs an elector and campaigns of
// etcd's own concurrency.Election (what `etcdctl elect` uses) on the same
// prefix: leadership passes between them in queue order, never to two at
// once, and both sides' Leader agree.
func TestInteropWithConcurrencyElection(t *testing.T) {
	srv := startEtcd(t)
	const resource = "interop"
	prefix := DefaultPrefix(resource)
	tr := newTracker(t)
	ctx := testCtx(t, 60*time.Second)

	campaign := func() *concurrency.Election {
		s, err := concurrency.NewSession(newClient(t, srv.Endpoint()), concurrency.WithTTL(int(MinTTL/time.Second)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return concurrency.NewElection(s, prefix)
	}
	agree := func(el *election.Elector, e *concurrency.Election, leaderID string) {
		t.Helper()
		ours, err := el.Leader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := e.Leader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		kv := theirs.Kvs[0]
		if ours.LeaderID != leaderID || ours.Term != uint64(kv.CreateRevision) {
			t.Errorf("Leader() = %q term %d; concurrency.Election's Leader() = %q created at %d; want %q",
				ours.LeaderID, ours.Term, kv.Value, kv.CreateRevision, leaderID)
		}
	}

	// A concurrency.Election leads first; the elector follows it.
	e1 := campaign()
	if err := e1.Campaign(ctx, "conc-1"); err != nil {
		t.Fatal(err)
	}
	tr.foreign("conc-1", uint64(e1.Rev()), true)
	el := startElector(t, newClient(t, srv.Endpoint()), opts(resource, "a"), tr)
	tr.waitSeen("a", "conc-1", 5*time.Second)
	agree(el, e1, "conc-1")

	// It resigns: the elector, queued next, leads.
	tr.foreign("conc-1", 0, false)
	if err := e1.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if id := tr.waitLeader("", 5*time.Second); id != "a" {
		t.Fatalf("leader %s, want a", id)
	}
	agree(el, e1, "a")
	if v, err := e1.Leader(ctx); err != nil || string(v.Kvs[0].Value) != "a\nvalue-of-a" {
		t.Errorf("concurrency.Election sees value %q, %v", v.Kvs[0].Value, err)
	}

	// A second campaign queues behind the elector and leads when it releases.
	e2 := campaign()
	won := make(chan error, 1)
	go func() { won <- e2.Campaign(ctx, "conc-2") }()
	select {
	case err := <-won:
		t.Fatalf("Campaign returned %v while the elector leads", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := el.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// The elector's term has ended once its handler saw its context end;
	// the campaign can only have won after the elector's key was deleted.
	if err := <-won; err != nil {
		t.Fatal(err)
	}
	tr.foreign("conc-2", uint64(e2.Rev()), true)
	tr.waitSeen("a", "conc-2", 5*time.Second)
	agree(el, e2, "conc-2")

	// It resigns: the elector leads again.
	tr.foreign("conc-2", 0, false)
	if err := e2.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if id := tr.waitLeader("", 5*time.Second); id != "a" {
		t.Fatalf("leader %s, want a", id)
	}
}
