package etcd

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/election"
)

// watchResult is what a Watch call returned.
type watchResult struct {
	rec election.Record
	err error
}

// TestRootWatchDispatch follows 12 elections of one backend, two
// candidates each, with one watch of the prefix root: the state of them
// all is loaded by one paginated read of the root (pages of 4 keys here),
// not one read per election, and each leader's release wakes the Watch of
// its own election only, with the record a read then returns. Names that
// prefix one another, or hold "/", get their own events.
func TestRootWatchDispatch(t *testing.T) {
	srv := startEtcd(t)
	counter := newRPCCounter()
	client := newClient(t, srv.Endpoint(), counter.install)
	b := newBackend(t, client)
	b.page = 4
	ctx := testCtx(t, 60*time.Second)
	rs := []string{"r1", "r10", "r2", "team/a", "team", "r1.x", "q", "q-1", "z", "zz", "m", "n"}
	type pair struct {
		leader, follower election.Session
		held, queued     election.Acquisition
	}
	pairs := map[string]*pair{}
	for _, r := range rs {
		p := &pair{leader: newSession(t, b, params(r, "a-"+r)), follower: newSession(t, b, params(r, "b-"+r))}
		p.held, p.queued = acquire(t, p.leader), acquire(t, p.follower)
		if p.queued.LeaderID != "a-"+r {
			t.Fatalf("%s: follower's Acquire = %+v; want a-%s leading", r, p.queued, r)
		}
		pairs[r] = p
	}
	// A key under the root that belongs to no election.
	if _, err := client.Put(ctx, DefaultPrefixRoot+"/stray", "x"); err != nil {
		t.Fatal(err)
	}

	before := counter.snapshot()
	var (
		mu    sync.Mutex
		woken = map[string]watchResult{}
		wg    sync.WaitGroup
	)
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec, err := b.Watch(ctx, r, pairs[r].queued.Revision, 20*time.Second)
			mu.Lock()
			woken[r] = watchResult{rec, err}
			mu.Unlock()
		}()
	}
	t.Cleanup(wg.Wait)
	// Every Watch waits on the one watch, loaded in pages.
	waitUntil(t, 5*time.Second, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.group.waiting == len(rs) && b.group.elects != nil
	})
	time.Sleep(100 * time.Millisecond)
	sent := counter.since(before)
	keys := 2*len(rs) + 1
	if pages := (keys + b.page - 1) / b.page; sent["/etcdserverpb.KV/Range"] != pages || sent["/etcdserverpb.KV/Txn"] != 0 {
		t.Errorf("%d elections of %d keys loaded with %v; want %d range reads of %d keys", len(rs), keys, sent, pages, b.page)
	}
	if sent["/etcdserverpb.Watch/Watch send"] != 1 {
		t.Errorf("%d watch requests for %d elections, want 1", sent["/etcdserverpb.Watch/Watch send"], len(rs))
	}

	for i, r := range rs {
		if err := pairs[r].leader.Close(ctx); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 5*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(woken) == i+1
		})
		mu.Lock()
		got, ok := woken[r]
		mu.Unlock()
		if !ok {
			t.Fatalf("the release of %s woke the Watch of another election: %v", r, woken)
		}
		read, err := b.Watch(ctx, r, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if got.err != nil || got.rec.LeaderID != "b-"+r || got.rec.Term <= pairs[r].held.Term ||
			got.rec.Revision != read.Revision || got.rec.Term != read.Term || got.rec.Session != read.Session {
			t.Errorf("%s: Watch after the release = %+v, %v; a read returns %+v", r, got.rec, got.err, read)
		}
	}
}

// waitUntil waits up to d for cond, and shows what show returns if not.
func waitUntil(t testing.TB, d time.Duration, cond func() bool, show ...func() string) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			var more []string
			for _, f := range show {
				more = append(more, f())
			}
			t.Fatalf("not so within %v %s", d, strings.Join(more, "\n"))
		}
	}
}

// syncBuffer is a buffer that slog may write from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// TestAuthOnePrefixWatch runs a backend whose user has rights on one
// election's prefix only: etcd refuses it the watch of the prefix root, so
// the backend warns and watches that election's prefix on its own, and a
// leader's release still wakes the follower's Watch at once.
func TestAuthOnePrefixWatch(t *testing.T) {
	srv := startEtcd(t)
	const resource = "guarded"
	prefix := DefaultPrefix(resource)
	setup := newClient(t, srv.Endpoint())
	ctx := testCtx(t, 60*time.Second)
	steps := []func() error{
		func() error { _, err := setup.UserAdd(ctx, "root", "root-pw"); return err },
		func() error { _, err := setup.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := setup.RoleAdd(ctx, "elect"); return err },
		func() error {
			_, err := setup.RoleGrantPermission(ctx, "elect", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := setup.UserAdd(ctx, "alice", "alice-pw"); return err },
		func() error { _, err := setup.UserGrantRole(ctx, "alice", "elect"); return err },
		func() error { _, err := setup.AuthEnable(ctx); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("auth setup step %d: %v", i, err)
		}
	}
	client := newClient(t, srv.Endpoint(), func(c *clientv3.Config) { c.Username, c.Password = "alice", "alice-pw" })
	logs := &syncBuffer{}
	b, err := NewBackend(client, Options{Options: election.Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close backend: %v", err)
		}
	})
	a := newSession(t, b, params(resource, "a"))
	held := acquire(t, a)
	f := newSession(t, b, params(resource, "f"))
	queued := acquire(t, f)
	if held.LeaderID != "a" || queued.LeaderID != "a" {
		t.Fatalf("Acquire = %+v, %+v; want a leading", held, queued)
	}
	woke := make(chan watchResult, 1)
	go func() {
		rec, err := b.Watch(ctx, resource, queued.Revision, 20*time.Second)
		woke <- watchResult{rec, err}
	}()
	waitUntil(t, 5*time.Second, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		h := b.hubs[resource]
		return b.group.denied && h != nil && h.own != nil && h.own.queueAt != 0
	}, logs.String)
	if !strings.Contains(logs.String(), "etcd refused a watch of every election") {
		t.Errorf("no warning of the refused root watch; logs:\n%s", logs)
	}
	released := time.Now()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-woke:
		if r.err != nil || r.rec.LeaderID != "f" {
			t.Fatalf("Watch after the release = %+v, %v; want f leading", r.rec, r.err)
		}
		if took := time.Since(released); took > 2*time.Second {
			t.Errorf("Watch woke %v after the release", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after the leader's release")
	}
}

// watchKeys records the keys of the watches a client creates.
type watchKeys struct {
	mu   sync.Mutex
	keys []string
}

func (w *watchKeys) install(cfg *clientv3.Config) {
	cfg.DialOptions = append(cfg.DialOptions,
		grpc.WithChainStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			s, err := streamer(ctx, desc, cc, method, opts...)
			if err != nil {
				return nil, err
			}
			return &keyStream{ClientStream: s, w: w}, nil
		}))
}

func (w *watchKeys) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.keys)
}

type keyStream struct {
	grpc.ClientStream
	w *watchKeys
}

func (s *keyStream) SendMsg(m any) error {
	if r, ok := m.(*etcdserverpb.WatchRequest); ok && r.GetCreateRequest() != nil {
		s.w.mu.Lock()
		s.w.keys = append(s.w.keys, string(r.GetCreateRequest().Key))
		s.w.mu.Unlock()
	}
	return s.ClientStream.SendMsg(m)
}

// TestWatchedKeys checks what is watched: the electors made with New watch
// their election's prefix, from its term offset key; the electors of three
// resources on a shared session watch the prefix root, once.
func TestWatchedKeys(t *testing.T) {
	srv := startEtcd(t)
	solo := &watchKeys{}
	client := newClient(t, srv.Endpoint(), solo.install)
	tr := newTracker(t)
	startElector(t, client, opts("solo", "a"), tr)
	if id := tr.waitLeader("", 5*time.Second); id != "a" {
		t.Fatalf("leader %s, want a", id)
	}
	startElector(t, client, opts("solo", "b"), tr)
	waitUntil(t, 5*time.Second, func() bool { return len(solo.get()) >= 2 })
	for _, k := range solo.get() {
		if k != offsetKey(DefaultPrefix("solo")) {
			t.Errorf("an elector made with New watches %q, want %q", k, offsetKey(DefaultPrefix("solo")))
		}
	}

	shared := &watchKeys{}
	log := &conformance.TermLog{}
	rs := resourceNames(3)
	start := time.Now()
	startGroup(t, newClient(t, srv.Endpoint(), shared.install), "g", rs, log)
	waitLeaders(t, log, "g", rs, start, 10*time.Second)
	waitUntil(t, 5*time.Second, func() bool { return len(shared.get()) >= 1 })
	time.Sleep(500 * time.Millisecond)
	if got := shared.get(); !slices.Equal(got, []string{DefaultPrefixRoot + "/"}) {
		t.Errorf("the electors of a shared session watch %q, want one watch of %q", got, DefaultPrefixRoot+"/")
	}
}
