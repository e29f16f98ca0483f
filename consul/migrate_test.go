package consul_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// migrationStore runs the conformance suite on backends.Migration between
// a memory store and Consul, in either direction: every candidate has a
// memory connection and a Consul backend through a proxy of its own.
type migrationStore struct {
	consul   *testStore
	mem      *memory.Store
	toConsul bool // Migration(memory, consul); otherwise Migration(consul, memory)
}

// migrationLink cuts a candidate off both stores.
type migrationLink struct {
	mem   *memory.Store
	name  string
	proxy *testserver.Proxy
}

func (l migrationLink) Cut() {
	l.mem.Cut(l.name)
	l.proxy.Cut()
}

func (l migrationLink) Heal() {
	l.mem.Heal(l.name)
	l.proxy.Heal()
}

func (m migrationStore) NewCandidate(t testing.TB, opts election.Options) (*election.Elector, conformance.Link, error) {
	p := testserver.NewProxy(t, m.consul.srv.Addr)
	u := &url.URL{Scheme: consul.Scheme, Host: p.Addr(), RawQuery: m.consul.query}
	cb, err := consul.OpenBackend(t.Context(), u, opts)
	if err != nil {
		return nil, nil, err
	}
	var from, to election.Backend = m.mem.Connect(opts.ID), cb
	if !m.toConsul {
		from, to = to, from
	}
	b, err := backends.Migration(from, to)
	if err != nil {
		_ = cb.Close()
		return nil, nil, err
	}
	el, err := election.NewOwning(b, opts)
	if err != nil {
		_ = b.(interface{ Close() error }).Close()
	}
	return el, migrationLink{mem: m.mem, name: opts.ID, proxy: p}, err
}

// Remove takes the leadership away in the store the pair leads with: the
// one it migrates to.
func (m migrationStore) Remove(t testing.TB, resource string, what conformance.Removal) {
	t.Helper()
	if m.toConsul {
		m.consul.Remove(t, resource, what)
		return
	}
	var ok bool
	if what == conformance.RemoveRecord {
		ok = m.mem.DeleteRecord(resource)
	} else {
		ok = m.mem.Expire(resource)
	}
	if !ok {
		t.Fatalf("no leader of %q to remove", resource)
	}
}

// TestMigrationConformance runs the suite on a migration from Consul to a
// memory store, with check-bound sessions of 2 s.
func TestMigrationConformance(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	runMigrationSuite(t, srv, false)
}

// TestMigrationConformanceToConsul runs the suite on a migration from a
// memory store to Consul. A pair that holds the old store and is still
// acquiring Consul is shown to followers for a moment with its term on the
// old store; the suite waits for followers to learn the leader's term.
func TestMigrationConformanceToConsul(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	runMigrationSuite(t, srv, true)
}

func runMigrationSuite(t *testing.T, srv *testserver.ConsulServer, toConsul bool) {
	const ttl = 2 * time.Second
	name := "migrate(consul→memory)"
	if toConsul {
		name = "migrate(memory→consul)"
	}
	conformance.Run(t, conformance.Config{
		Name:        name,
		TTL:         ttl,
		ExpiryBound: ttl + 500*time.Millisecond,
		Parallel:    true,
		Open: func(t *testing.T) conformance.Store {
			return migrationStore{consul: newStore(t, srv, "checkTTL=2s"), mem: memory.NewStore(), toConsul: toConsul}
		},
	})
}

// TestMigrationToConsul moves leadership from a memory store to Consul:
// a pair leads with a term above every term the memory store issued, its
// successor with a higher one, and followers end up told the leader's term.
func TestMigrationToConsul(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	ctx := context.Background()
	mem := memory.NewStore()
	const resource = "migrate-to-consul"
	// The memory store has issued terms before the move.
	old, err := election.New(mem.Connect("old"), election.Options{Resource: resource, ID: "old", TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	evo := newEvents()
	if err := old.Start(ctx, evo.handler); err != nil {
		t.Fatal(err)
	}
	lo := evo.wait(t, 10*time.Second, "leader call of old", leads)
	if err := old.Close(ctx); err != nil {
		t.Fatal(err)
	}

	pair := func(id string) (*election.Elector, *events) {
		b, err := backends.Migration(mem.Connect(id), newBackend(t, srv))
		if err != nil {
			t.Fatal(err)
		}
		el, err := election.NewOwning(b, election.Options{Resource: resource, ID: id, TTL: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ev := newEvents()
		if err := el.Start(ctx, ev.handler); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = el.Close(context.Background()) })
		return el, ev
	}
	ela, eva := pair("a")
	la := eva.wait(t, 10*time.Second, "leader call of a", leads)
	if la.Term <= lo.Term {
		t.Fatalf("a leads with term %d, the memory store issued %d", la.Term, lo.Term)
	}
	_, evb := pair("b")
	evb.wait(t, 10*time.Second, "b told a's term", func(ev event) bool {
		return !ev.IsLeader && ev.LeaderID == "a" && ev.Term == la.Term
	})
	if err := ela.Release(ctx); err != nil {
		t.Fatal(err)
	}
	lb := evb.wait(t, 10*time.Second, "leader call of b", leads)
	if lb.Term <= la.Term {
		t.Fatalf("b leads with term %d after a's %d", lb.Term, la.Term)
	}
	eva.wait(t, 10*time.Second, "a told b's term", func(ev event) bool {
		return !ev.IsLeader && ev.LeaderID == "b" && ev.Term == lb.Term
	})
}
