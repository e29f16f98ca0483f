package etcd

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
)

// startEtcd starts a member for one test.
func startEtcd(t testing.TB, args ...string) *testserver.EtcdServer {
	t.Helper()
	return testserver.StartEtcd(t, testserver.EtcdOptions{Args: args})
}

// newClient returns a client of endpoint, closed when t ends.
func newClient(t testing.TB, endpoint string, cfg ...func(*clientv3.Config)) *clientv3.Client {
	t.Helper()
	c := clientv3.Config{
		Endpoints:   []string{endpoint},
		DialTimeout: 5 * time.Second,
		DialOptions: []grpc.DialOption{reconnectFast(5 * time.Second)},
		Logger:      zap.NewNop(),
	}
	for _, f := range cfg {
		f(&c)
	}
	client, err := clientv3.New(c)
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// testCtx returns a context that ends after d or with t.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// store is the conformance.Store of one etcd member: every candidate gets a
// client of its own through a proxy of its own.
type store struct {
	srv   *testserver.EtcdServer
	admin *clientv3.Client
}

var _ conformance.Store = (*store)(nil)

// newStore returns the store of srv. The admin client serves Remove; it is
// connected here, so that its goroutines predate those a test checks.
func newStore(t testing.TB, srv *testserver.EtcdServer) *store {
	t.Helper()
	admin := newClient(t, srv.Endpoint())
	if _, err := admin.Get(testCtx(t, 5*time.Second), "connect"); err != nil {
		t.Fatalf("admin client: %v", err)
	}
	return &store{srv: srv, admin: admin}
}

func (s *store) NewCandidate(t testing.TB, opts election.Options) (*election.Elector, conformance.Link, error) {
	p := testserver.NewProxy(t, s.srv.Endpoint())
	el, err := New(newClient(t, p.Addr()), Options{Options: opts})
	if err != nil {
		return nil, nil, err
	}
	return el, p, nil
}

var _ conformance.SessionStore = (*store)(nil)

// NewSharedSession returns a shared session on a backend, closed when t
// ends, with a client of its own through a proxy of its own.
func (s *store) NewSharedSession(t testing.TB, o election.SessionOptions) (*election.SharedSession, conformance.Link, error) {
	p := testserver.NewProxy(t, s.srv.Endpoint())
	ss, err := election.NewSharedSession(newBackend(t, newClient(t, p.Addr())), o)
	return ss, p, err
}

func (s *store) Remove(t testing.TB, resource string, what conformance.Removal) {
	t.Helper()
	ctx := testCtx(t, 5*time.Second)
	resp, err := s.admin.Get(ctx, DefaultPrefix(resource)+"/", clientv3.WithFirstCreate()...)
	if err != nil || len(resp.Kvs) == 0 {
		t.Fatalf("Remove: leader key of %s: %v (%d keys)", resource, err, len(resp.Kvs))
	}
	kv := resp.Kvs[0]
	switch what {
	case conformance.RemoveSession:
		_, err = s.admin.Revoke(ctx, clientv3.LeaseID(kv.Lease))
	case conformance.RemoveRecord:
		_, err = s.admin.Delete(ctx, string(kv.Key))
	}
	if err != nil {
		t.Fatalf("Remove %s of %s: %v", what, resource, err)
	}
}

// newBackend returns a backend on client that is closed, before client,
// when t ends.
func newBackend(t testing.TB, client *clientv3.Client) *Backend {
	t.Helper()
	b, err := NewBackend(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close backend: %v", err)
		}
	})
	return b
}
