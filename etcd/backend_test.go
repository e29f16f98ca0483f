package etcd

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
)

func params(resource, id string) election.SessionParams {
	return election.SessionParams{Resource: resource, ID: id, Value: []byte("value-of-" + id), TTL: MinTTL}
}

func newSession(t *testing.T, b *Backend, p election.SessionParams) election.Session {
	t.Helper()
	s, err := b.NewSession(testCtx(t, 5*time.Second), p)
	if err != nil {
		t.Fatalf("NewSession %s: %v", p.ID, err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func acquire(t *testing.T, s election.Session) election.Acquisition {
	t.Helper()
	a, err := s.Acquire(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatalf("Acquire %s: %v", s.Info().ID, err)
	}
	return a
}

func TestSessionQueueAndRelease(t *testing.T) {
	srv := startEtcd(t)
	client := newClient(t, srv.Endpoint())
	b := newBackend(t, client)
	ctx := testCtx(t, 30*time.Second)
	const resource = "jobs/nightly"
	prefix := DefaultPrefix(resource)
	if prefix != "election/jobs%2Fnightly" {
		t.Fatalf("DefaultPrefix = %q", prefix)
	}

	a := newSession(t, b, params(resource, "a"))
	info := a.Info()
	if info.Backend != "etcd" || info.TTL != MinTTL || info.Fields["key"] != prefix+"/"+info.ID || info.Fields["prefix"] != prefix {
		t.Fatalf("Info = %+v", info)
	}
	got := acquire(t, a)
	if got.Session != info.ID || got.LeaderID != "a" || string(got.Value) != "value-of-a" || got.Term == 0 || got.Revision == 0 || got.Renewed || got.RetryAfter != 0 {
		t.Fatalf("first Acquire = %+v; want held by a", got)
	}
	if again := acquire(t, a); again.Record.Term != got.Term || again.Session != got.Session || again.Revision != got.Revision {
		t.Fatalf("second Acquire = %+v, first %+v: not idempotent", again, got)
	}
	kv, err := client.Get(ctx, info.Fields["key"])
	if err != nil || len(kv.Kvs) != 1 || string(kv.Kvs[0].Value) != "a\nvalue-of-a" || uint64(kv.Kvs[0].CreateRevision) != got.Term {
		t.Fatalf("leader key = %+v, %v", kv, err)
	}

	bs := newSession(t, b, params(resource, "b"))
	follower := acquire(t, bs)
	if follower.Session != info.ID || follower.LeaderID != "a" || follower.Term != got.Term {
		t.Fatalf("b's Acquire = %+v; want a's record", follower)
	}
	if err := a.Renew(ctx); err != nil {
		t.Fatalf("Renew: %v", err)
	}

	// b waits in Watch; a's release wakes it with b first.
	type result struct {
		rec election.Record
		err error
	}
	woke := make(chan result, 1)
	go func() {
		rec, err := b.Watch(ctx, resource, follower.Revision, 10*time.Second)
		woke <- result{rec, err}
	}()
	time.Sleep(100 * time.Millisecond)
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	var r result
	select {
	case r = <-woke:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after the leader's release")
	}
	if r.err != nil || r.rec.Session != bs.Info().ID || r.rec.LeaderID != "b" || r.rec.Term <= got.Term {
		t.Fatalf("Watch after release = %+v, %v; want b leading with a term > %d", r.rec, r.err, got.Term)
	}
	if kv, err := client.Get(ctx, info.Fields["key"]); err != nil || len(kv.Kvs) != 0 {
		t.Fatalf("a's key after Close: %+v, %v", kv, err)
	}
	ttl, err := client.TimeToLive(ctx, clientv3.LeaseID(mustLease(t, info.ID)))
	if err != nil || ttl.TTL != -1 {
		t.Fatalf("a's lease after Close: %+v, %v; want revoked", ttl, err)
	}
	if err := a.Renew(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Fatalf("Renew after Close = %v, want ErrSessionLost", err)
	}
	held := acquire(t, bs)
	if held.Session != bs.Info().ID || held.Term != r.rec.Term {
		t.Fatalf("b's Acquire after promotion = %+v, want held with term %d", held, r.rec.Term)
	}

	// Without a leader, Watch reports a free record.
	if err := bs.Close(ctx); err != nil {
		t.Fatalf("Close b: %v", err)
	}
	free, err := b.Watch(ctx, resource, 0, 0)
	if err != nil || !free.Free() || free.LeaderID != "" || free.Term != 0 || free.Revision == 0 {
		t.Fatalf("Watch of a free election = %+v, %v", free, err)
	}
}

func TestLostLease(t *testing.T) {
	srv := startEtcd(t)
	client := newClient(t, srv.Endpoint())
	b := newBackend(t, client)
	ctx := testCtx(t, 30*time.Second)
	s := newSession(t, b, params("lost", "a"))
	if _, err := client.Revoke(ctx, clientv3.LeaseID(mustLease(t, s.Info().ID))); err != nil {
		t.Fatal(err)
	}
	if err := s.Renew(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Errorf("Renew of a revoked lease = %v, want ErrSessionLost", err)
	}
	if _, err := s.Acquire(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Errorf("Acquire with a revoked lease = %v, want ErrSessionLost", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Errorf("Close of a revoked session = %v, want nil", err)
	}

	// A leader whose key is seen deleted is told by Renew.
	l := newSession(t, b, params("lost", "l"))
	rec := acquire(t, l).Record
	if _, err := client.Delete(ctx, l.Info().Fields["key"]); err != nil {
		t.Fatal(err)
	}
	if now, err := b.Watch(ctx, "lost", rec.Revision, 5*time.Second); err != nil || !now.Free() {
		t.Fatalf("Watch after the key was deleted = %+v, %v; want free", now, err)
	}
	if err := l.Renew(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Errorf("Renew of a leader whose key was deleted = %v, want ErrSessionLost", err)
	}
}

func TestSessionTTL(t *testing.T) {
	srv := startEtcd(t)
	b := newBackend(t, newClient(t, srv.Endpoint()))
	for _, ttl := range []time.Duration{1500 * time.Millisecond, time.Second, 0} {
		p := params("ttl", "a")
		p.TTL = ttl
		if _, err := b.NewSession(testCtx(t, 5*time.Second), p); !errors.Is(err, election.ErrInvalidOptions) {
			t.Errorf("NewSession with TTL %v = %v, want an invalid option", ttl, err)
		}
	}
}

// TestWatchIgnoresQueue checks that a follower's Watch stays asleep, and
// sends nothing, while candidates join and leave the queue behind the leader.
func TestWatchIgnoresQueue(t *testing.T) {
	srv := startEtcd(t)
	other := newBackend(t, newClient(t, srv.Endpoint()))
	counter := newRPCCounter()
	b := newBackend(t, newClient(t, srv.Endpoint(), counter.install))
	ctx := testCtx(t, 30*time.Second)
	leader := newSession(t, other, params("quiet", "leader"))
	acquire(t, leader)
	rec, err := b.Watch(ctx, "quiet", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The first wait starts the resource's watch and loads the queue.
	if _, err := b.Watch(ctx, "quiet", rec.Revision, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	before := counter.snapshot()
	done := make(chan election.Record, 1)
	start := time.Now()
	go func() {
		r, err := b.Watch(ctx, "quiet", rec.Revision, time.Second)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	for _, id := range []string{"q1", "q2", "q3"} {
		acquire(t, newSession(t, other, params("quiet", id)))
	}
	if err := newSession(t, other, params("quiet", "q4")).Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if waited := time.Since(start); waited < time.Second || got.Revision != rec.Revision || got.LeaderID != "leader" {
		t.Fatalf("Watch returned %+v after %v; want the same record after 1s", got, waited)
	}
	sent := counter.since(before)
	if len(sent) != 0 {
		t.Fatalf("a waiting Watch sent %v; want nothing: its watch stream is open", sent)
	}
}

// TestWatchCompacted compacts the store while a Watch waits, and makes its
// watch resume, after a lost connection, from a revision compacted
// meanwhile: the Watch keeps waiting, reloads the queue once, and still
// sees the next change.
func TestWatchCompacted(t *testing.T) {
	srv := startEtcd(t)
	admin := newClient(t, srv.Endpoint())
	other := newBackend(t, admin)
	counter := newRPCCounter()
	link := testserver.NewProxy(t, srv.Endpoint())
	b := newBackend(t, newClient(t, link.Addr(), counter.install))
	ctx := testCtx(t, 30*time.Second)
	leader := newSession(t, other, params("compact", "leader"))
	acquire(t, leader)
	rec, err := b.Watch(ctx, "compact", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Watch(ctx, "compact", rec.Revision, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	compact := func() {
		var last int64
		for range 20 {
			resp, err := admin.Put(ctx, "unrelated", "x")
			if err != nil {
				t.Fatal(err)
			}
			last = resp.Header.Revision
		}
		if _, err := admin.Compact(ctx, last, clientv3.WithCompactPhysical()); err != nil {
			t.Fatal(err)
		}
	}
	before := counter.snapshot()
	done := make(chan election.Record, 1)
	go func() {
		r, err := b.Watch(ctx, "compact", rec.Revision, 20*time.Second)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	compact()
	link.Cut()
	compact()
	link.Reset() // the watch resumes on a new connection, from a compacted revision
	link.Heal()
	time.Sleep(time.Second)
	select {
	case r := <-done:
		t.Fatalf("Watch returned %+v on compaction; want it to keep waiting", r)
	default:
	}
	// The resumed watch fails as compacted; the new one reloads the queue.
	if sent := counter.since(before); sent.reads() != 1 || sent["/etcdserverpb.Watch/Watch open"] == 0 {
		t.Errorf("compactions and a resume sent %v; want a new watch and one read", sent)
	}
	if err := leader.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if !r.Free() {
			t.Fatalf("Watch after the release = %+v, want free", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch missed the release after a compaction")
	}
}

func mustLease(t *testing.T, hex string) int64 {
	t.Helper()
	id, err := strconv.ParseInt(hex, 16, 64)
	if err != nil {
		t.Fatalf("lease ID %q: %v", hex, err)
	}
	return id
}
