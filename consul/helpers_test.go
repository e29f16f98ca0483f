package consul_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// newClient returns a client of addr with a transport of its own, whose
// connections are closed when t ends.
func newClient(t testing.TB, addr, token string) *api.Client {
	t.Helper()
	tr := &http.Transport{}
	c, err := api.NewClient(&api.Config{Address: addr, Token: token, Transport: tr})
	if err != nil {
		t.Fatalf("consul client: %v", err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return c
}

// testStore is a conformance.Store on a real Consul agent: every candidate
// is opened with OpenURL through a proxy of its own.
type testStore struct {
	srv   *testserver.ConsulServer
	admin *api.Client
	query string // the URL parameters of every candidate
}

func newStore(t testing.TB, srv *testserver.ConsulServer, query string) *testStore {
	return &testStore{srv: srv, admin: newClient(t, srv.Addr, srv.ManagementToken), query: query}
}

func (s *testStore) NewCandidate(t testing.TB, opts election.Options) (*election.Elector, conformance.Link, error) {
	p := testserver.NewProxy(t, s.srv.Addr)
	u := &url.URL{Scheme: consul.Scheme, Host: p.Addr(), RawQuery: s.query}
	el, err := consul.OpenURL(context.Background(), u, opts)
	return el, p, err
}

var _ conformance.SessionStore = (*testStore)(nil)

// NewSharedSession opens a backend from the store's URL through a proxy of
// its own, closed when t ends, and a shared session on it.
func (s *testStore) NewSharedSession(t testing.TB, o election.SessionOptions) (*election.SharedSession, conformance.Link, error) {
	p := testserver.NewProxy(t, s.srv.Addr)
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

func (s *testStore) Remove(t testing.TB, resource string, what conformance.Removal) {
	t.Helper()
	key := consul.DefaultKey(resource)
	pair, _, err := s.admin.KV().Get(key, &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	if pair == nil || pair.Session == "" {
		t.Fatalf("no leader of %q to remove", resource)
	}
	if what == conformance.RemoveRecord {
		_, err = s.admin.KV().Delete(key, nil)
	} else {
		_, err = s.admin.Session().Destroy(pair.Session, nil)
	}
	if err != nil {
		t.Fatalf("remove %s of %q: %v", what, resource, err)
	}
}

// leaderOf reads the key of resource.
func leaderOf(t testing.TB, c *api.Client, resource string) *api.KVPair {
	t.Helper()
	pair, _, err := c.KV().Get(consul.DefaultKey(resource), &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatalf("read leader of %q: %v", resource, err)
	}
	return pair
}

// event is a handler call, or the end of a leader call's context.
type event struct {
	election.Leadership
	ended bool
	at    time.Time
}

// events collects the handler calls of one elector.
type events struct {
	ch chan event
}

func newEvents() *events { return &events{ch: make(chan event, 256)} }

// handler records every call; leader calls block until their term ends,
// which is recorded too.
func (e *events) handler(ctx context.Context, l election.Leadership) error {
	e.ch <- event{Leadership: l, at: time.Now()}
	if l.IsLeader {
		<-ctx.Done()
		e.ch <- event{Leadership: l, ended: true, at: time.Now()}
	}
	return nil
}

// wait returns the first event that satisfies ok, within d.
func (e *events) wait(t testing.TB, d time.Duration, what string, ok func(event) bool) event {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev := <-e.ch:
			if ok(ev) {
				return ev
			}
		case <-timer.C:
			t.Fatalf("no %s within %v", what, d)
			return event{}
		}
	}
}

func leads(ev event) bool   { return ev.IsLeader && !ev.ended }
func stepped(ev event) bool { return ev.ended }

// sees returns a matcher of a follower notification naming leader.
func sees(leader string) func(event) bool {
	return func(ev event) bool { return !ev.IsLeader && ev.LeaderID == leader }
}

// cand is what New takes for one candidate: its client and options.
type cand struct {
	client *api.Client
	consul.Options
}

// start creates and starts an elector that is closed when t ends.
func start(t testing.TB, o cand) (*election.Elector, *events) {
	t.Helper()
	el, err := consul.New(o.client, o.Options)
	if err != nil {
		t.Fatalf("consul.New: %v", err)
	}
	ev := newEvents()
	ctx, cancel := context.WithCancel(context.Background())
	if err := el.Start(ctx, ev.handler); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer ccancel()
		if err := el.Close(cctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		cancel()
	})
	return el, ev
}
