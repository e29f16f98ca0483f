package consul_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// errRefused is the error of a session creation a renewCounter
// refuses.
var errRefused = errors.New("session creation refused by the test")

// renewCounter counts the session renewals sent through it, and
// refuses session creations while refuseCreate is set.
type renewCounter struct {
	base         *http.Transport
	renews       atomic.Int64
	refuseCreate atomic.Bool
}

func (c *renewCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	switch {
	case strings.HasPrefix(r.URL.Path, "/v1/session/renew/"):
		c.renews.Add(1)
	case r.URL.Path == "/v1/session/create" && c.refuseCreate.Load():
		return nil, errRefused
	}
	return c.base.RoundTrip(r)
}

// process is one process's electors on one shared session: a backend with
// a client of its own, counted by rt (when the test made the client).
type process struct {
	b   *consul.Backend
	ss  *election.SharedSession
	rt  *renewCounter
	log *conformance.TermLog
	id  string
}

// newProcess returns a process of candidate id on srv with the backend
// options o (its client is made here) and the session options so, whose
// electors record their handler calls in log. Its session is closed when t
// ends, after its electors.
func newProcess(t testing.TB, srv *testserver.ConsulServer, id string, log *conformance.TermLog, o consul.Options, so election.SessionOptions) *process {
	t.Helper()
	rt := &renewCounter{base: &http.Transport{}}
	t.Cleanup(rt.base.CloseIdleConnections)
	client, err := api.NewClient(&api.Config{Address: srv.Addr, HttpClient: &http.Client{Transport: rt}})
	if err != nil {
		t.Fatalf("consul client: %v", err)
	}
	b, err := consul.NewBackend(client, o)
	if err != nil {
		t.Fatalf("NewBackend: %v", err)
	}
	p := processOn(t, b, id, log, so)
	p.rt = rt
	return p
}

// processOn returns a process of candidate id on the backend b (which the
// caller closes), as newProcess does; its renewals are not counted.
func processOn(t testing.TB, b *consul.Backend, id string, log *conformance.TermLog, so election.SessionOptions) *process {
	t.Helper()
	ss, err := consul.NewSharedSession(b, so)
	if err != nil {
		t.Fatalf("NewSharedSession: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ss.Close(ctx); err != nil {
			t.Errorf("SharedSession.Close: %v", err)
		}
	})
	return &process{b: b, ss: ss, log: log, id: id}
}

// elect starts this process's elector of resource on its session, closed
// when t ends; its handler calls are logged under the process's ID.
func (p *process) elect(t testing.TB, resource string) *election.Elector {
	t.Helper()
	el, err := consul.New(nil, consul.Options{Options: election.Options{Resource: resource, ID: p.id, Session: p.ss}})
	if err != nil {
		t.Fatalf("consul.New on a shared session: %v", err)
	}
	if err := el.Start(context.Background(), p.log.Handler(p.id)); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := el.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return el
}

// waitAll waits until ok holds for every elector, within d.
func waitAll(t testing.TB, d time.Duration, what string, els []*election.Elector, ok func(*election.Elector) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		n := 0
		for _, el := range els {
			if ok(el) {
				n++
			}
		}
		if n == len(els) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d within %v", what, n, len(els), d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isLeader(el *election.Elector) bool { return el.IsLeader() }

// consulSessions lists the sessions Consul has.
func consulSessions(t testing.TB, admin *api.Client) []*api.SessionEntry {
	t.Helper()
	list, _, err := admin.Session().List(&api.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatalf("session list: %v", err)
	}
	return list
}
