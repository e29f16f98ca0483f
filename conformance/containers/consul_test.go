package containers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/testcontainers/testcontainers-go"
	tcconsul "github.com/testcontainers/testcontainers-go/modules/consul"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// consulDevNode is the node name of a single-agent Consul container.
const consulDevNode = "consul-dev"

// TestConsulConformance runs the suite with plain sessions, as the consul
// package's own tests do: TTL 10 s, Consul's minimum, and a lock-delay of
// 1 s. A crashed leader's session lasts up to 2×TTL, then the lock-delay
// runs.
func TestConsulConformance(t *testing.T) {
	addr := consulServer(t)
	const ttl, lockDelay = 10 * time.Second, time.Second
	st := newConsulStore(t, addr, "lockDelay=1s")
	conformance.Run(t, conformance.Config{
		Name:        "consul",
		TTL:         ttl,
		ExpiryBound: 2*ttl + lockDelay,
		Parallel:    true,
		Open:        func(*testing.T) conformance.Store { return st },
	})
}

// TestConsulConformanceCheckTTL runs the suite with sessions bound to a TTL
// check of 2 s and no lock-delay.
func TestConsulConformanceCheckTTL(t *testing.T) {
	addr := consulServer(t)
	const ttl = 2 * time.Second
	st := newConsulStore(t, addr, "checkTTL=2s")
	conformance.Run(t, conformance.Config{
		Name:        "consul-checkttl",
		TTL:         ttl,
		ExpiryBound: ttl + 500*time.Millisecond,
		Parallel:    true,
		Open:        func(*testing.T) conformance.Store { return st },
	})
}

// consulServer returns the HTTP API address of the Consul agent to test: the
// one CONSUL_ADDR names, or a dev agent in a container that is removed when
// t ends.
func consulServer(t *testing.T) string {
	t.Helper()
	switch addrs := consulStore.addrs(); len(addrs) {
	case 0:
	case 1:
		return addrs[0]
	default:
		t.Fatalf("%s: want one address, got %q", consulStore.addrVar, addrs)
	}
	requireDocker(t)
	ctx := startContext(t)
	c, err := tcconsul.Run(ctx, consulStore.image(),
		testcontainers.WithCmd("agent", "-dev", "-client", "0.0.0.0", "-node", consulDevNode),
		onLoopback(),
		logTo(t),
	)
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("start Consul (%s): %v", consulStore.image(), err)
	}
	addr, err := c.ApiEndpoint(ctx)
	if err != nil {
		t.Fatalf("Consul address: %v", err)
	}
	admin := newConsulClient(t, addr)
	waitUntil(ctx, t, "Consul "+addr, func(ctx context.Context) error {
		return consulReady(ctx, admin, []string{consulDevNode})
	})
	return addr
}

// newConsulClient returns a client of the agent at addr, with a transport of
// its own whose connections are closed when t ends.
func newConsulClient(t testing.TB, addr string) *api.Client {
	t.Helper()
	tr := &http.Transport{}
	c, err := api.NewClient(&api.Config{Address: addr, Transport: tr})
	if err != nil {
		t.Fatalf("Consul client of %s: %v", addr, err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// consulReady reports nil once the agent knows a Raft leader and the
// catalog lists the nodes, so that sessions can be created on their agents.
func consulReady(ctx context.Context, c *api.Client, nodes []string) error {
	q := (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx)
	leader, err := c.Status().LeaderWithQueryOptions(q)
	if err != nil {
		return err
	}
	if leader == "" {
		return errors.New("no Raft leader yet")
	}
	for _, n := range nodes {
		node, _, err := c.Catalog().Node(n, q)
		if err != nil {
			return err
		}
		if node == nil || node.Node == nil {
			return fmt.Errorf("node %s not in the catalog yet", n)
		}
	}
	return nil
}

// consulConformance is the conformance.Store of one Consul agent: every
// candidate is opened from a consul:// URL with the parameters query,
// through a proxy of its own.
type consulConformance struct {
	addr  string
	admin *api.Client
	query string
}

var _ conformance.SessionStore = (*consulConformance)(nil)

// newConsulStore returns the store of the agent at addr. Its admin client,
// which serves Remove, is created here, before any test of the suite.
func newConsulStore(t testing.TB, addr, query string) *consulConformance {
	return &consulConformance{addr: addr, admin: newConsulClient(t, addr), query: query}
}

func (s *consulConformance) NewCandidate(t testing.TB, opts election.Options) (*election.Elector, conformance.Link, error) {
	p := testserver.NewProxy(t, s.addr)
	u := &url.URL{Scheme: consul.Scheme, Host: p.Addr(), RawQuery: s.query}
	el, err := consul.OpenURL(context.Background(), u, opts)
	return el, p, err
}

// NewSharedSession opens a backend from a consul:// URL with the parameters
// query, through a proxy of its own, closed when t ends, and a shared
// session on it.
func (s *consulConformance) NewSharedSession(t testing.TB, o election.SessionOptions) (*election.SharedSession, conformance.Link, error) {
	p := testserver.NewProxy(t, s.addr)
	u := &url.URL{Scheme: consul.Scheme, Host: p.Addr(), RawQuery: s.query}
	b, err := consul.OpenBackend(context.Background(), u, election.Options{TTL: o.TTL})
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close the backend of a shared session: %v", err)
		}
	})
	ss, err := election.NewSharedSession(b, o)
	return ss, p, err
}

func (s *consulConformance) Remove(t testing.TB, resource string, what conformance.Removal) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := consul.DefaultKey(resource)
	pair, _, err := s.admin.KV().Get(key, (&api.QueryOptions{RequireConsistent: true}).WithContext(ctx))
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	if pair == nil || pair.Session == "" {
		t.Fatalf("no leader of %q to remove", resource)
	}
	w := (&api.WriteOptions{}).WithContext(ctx)
	if what == conformance.RemoveRecord {
		_, err = s.admin.KV().Delete(key, w)
	} else {
		_, err = s.admin.Session().Destroy(pair.Session, w)
	}
	if err != nil {
		t.Fatalf("remove the %s of the leader of %q: %v", what, resource, err)
	}
}
