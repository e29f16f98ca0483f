package consul_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// TestOpenURLErrors checks that every bad URL is refused with an error that
// names what is wrong, without contacting a server.
func TestOpenURLErrors(t *testing.T) {
	opts := election.Options{Resource: "url"}
	cases := []struct {
		url  string
		want []string // in the error
	}{
		{"http://127.0.0.1:8500", []string{"scheme", "http"}},
		{"consul://127.0.0.1:8500?foo=1&bar=2&token=x", []string{"unknown parameters", "bar, foo"}},
		{"consul://127.0.0.1:8500?Token=x", []string{"unknown parameters", "Token"}},
		{"consul://127.0.0.1:8500?lockDelay=soon", []string{"lockDelay", "duration"}},
		{"consul://127.0.0.1:8500?lockDelay=-1s", []string{"lockDelay", "duration"}},
		{"consul://127.0.0.1:8500?lockDelay=2m", []string{"LockDelay", "at most 1m0s"}},
		{"consul://127.0.0.1:8500?checkTTL=soon", []string{"checkTTL", "duration"}},
		{"consul://127.0.0.1:8500?checkTTL=-2", []string{"checkTTL", "duration"}},
		{"consul://127.0.0.1:8500?checkTTL=1e300", []string{"checkTTL", "out of range"}},
		{"consul://127.0.0.1:8500?lockDelay=120", []string{"LockDelay", "at most 1m0s"}},
		{"consul://127.0.0.1:8500?checkTTL=100ms", []string{"CheckTTL", "at least"}},
		{"consul://127.0.0.1:8500?checkTTL=2s&datacenter=dc2", []string{"CheckTTL", "Datacenter"}},
		{"consul://127.0.0.1:8500?key=/abs", []string{"Key"}},
		{"consul://127.0.0.1:8500?token=a&token=b", []string{"token", "once"}},
		{"consul://user:secret@127.0.0.1:8500", []string{"user information", "token parameter"}},
		{"consul://127.0.0.1:8500/service/x", []string{"path", "key parameter"}},
		{"consul://127.0.0.1:8500?caFile=ca.pem", []string{"caFile", "consuls"}},
		{"consul://127.0.0.1:8500?tlsServerName=n", []string{"tlsServerName", "consuls"}},
		{"consuls://127.0.0.1:8501?caFile=a.pem&caFile=b.pem", []string{"caFile", "once"}},
		{"consuls://127.0.0.1:8501?certFile=c.pem", []string{"certFile", "keyFile", "together"}},
		{"consuls://127.0.0.1:8501?caFile=/nonexistent/ca.pem", []string{"URL parameter caFile", "/nonexistent/ca.pem"}},
		{"consuls://127.0.0.1:8501?ca=ca.pem", []string{"unknown parameters", "ca"}},
		{"consul://127.0.0.1:8500?a=%zz", []string{"query"}},
		{"consul://127.0.0.1:8500?handoff=yes", []string{"handoff", "true or false"}},
	}
	for _, tc := range cases {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatalf("parse %s: %v", tc.url, err)
		}
		el, err := consul.OpenURL(context.Background(), u, opts)
		if err == nil {
			_ = el.Close(context.Background())
			t.Errorf("OpenURL(%s) accepted", tc.url)
			continue
		}
		if !errors.Is(err, election.ErrInvalidOptions) {
			t.Errorf("OpenURL(%s) = %v; want an error wrapping ErrInvalidOptions", tc.url, err)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("OpenURL(%s) = %q; want it to mention %q", tc.url, err, w)
			}
		}
	}

	// A TLS file that does not exist fails when the client is built.
	u, _ := url.Parse("consuls://127.0.0.1:8501?caFile=/nonexistent/ca.pem")
	if el, err := consul.OpenURL(context.Background(), u, opts); err == nil || !strings.Contains(err.Error(), "ca.pem") {
		if el != nil {
			_ = el.Close(context.Background())
		}
		t.Errorf("OpenURL with a missing CA file = %v", err)
	}
	// The election options are checked too, against Consul's bounds.
	u, _ = url.Parse("consul://127.0.0.1:8500")
	if _, err := consul.OpenURL(context.Background(), u, election.Options{Resource: "url", TTL: time.Second}); err == nil || !strings.Contains(err.Error(), "TTL") {
		t.Errorf("OpenURL with a TTL of 1s = %v; want the TTL refused", err)
	}
	// OpenBackend cannot default the elector's TTL: with checkTTL it must be
	// given, and at most checkTTL.
	u, _ = url.Parse("consul://127.0.0.1:8500?checkTTL=2s")
	if _, err := consul.OpenBackend(context.Background(), u, election.Options{Resource: "url"}); err == nil || !strings.Contains(err.Error(), "CheckTTL") {
		t.Errorf("OpenBackend with checkTTL and the default TTL = %v; want the TTL refused", err)
	}
	b, err := consul.OpenBackend(context.Background(), u, election.Options{Resource: "url", TTL: 2 * time.Second})
	if err != nil {
		t.Errorf("OpenBackend with checkTTL and ttl: %v", err)
	} else {
		_ = b.Close()
	}
	// OpenURL defaults the TTL to checkTTL.
	if el, err := consul.OpenURL(context.Background(), u, election.Options{Resource: "url"}); err != nil {
		t.Errorf("OpenURL with checkTTL: %v", err)
	} else {
		_ = el.Close(context.Background())
	}
	// A cancelled context is refused at once.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := consul.OpenURL(ctx, u, opts); !errors.Is(err, context.Canceled) {
		t.Errorf("OpenURL with a cancelled context = %v", err)
	}
}

// TestOpenURL opens an elector with every Consul parameter and checks that
// each reached the session and the key.
func TestOpenURL(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	u := &url.URL{Scheme: "consul", Host: srv.Addr, RawQuery: url.Values{
		"key":         {"custom/leader-key"},
		"lockDelay":   {"none"},
		"sessionName": {"url test"},
		"datacenter":  {"dc1"},
		"token":       {"anonymous-is-fine-without-acls"},
	}.Encode()}
	el, err := consul.OpenURL(context.Background(), u, election.Options{Resource: "url", ID: "u", TTL: 10 * time.Second})
	if err != nil {
		t.Fatalf("OpenURL: %v", err)
	}
	ev := newEvents()
	if err := el.Start(context.Background(), ev.handler); err != nil {
		t.Fatal(err)
	}
	l := ev.wait(t, 10*time.Second, "leader call", leads)
	pair, _, err := admin.KV().Get("custom/leader-key", nil)
	if err != nil || pair == nil || pair.Session != l.Session.ID {
		t.Fatalf("custom key = %+v, %v; want held by %s", pair, err, l.Session.ID)
	}
	e, _, err := admin.Session().Info(l.Session.ID, nil)
	if err != nil || e == nil || e.Name != "url test" || e.LockDelay != 0 {
		t.Fatalf("session = %+v, %v; want name %q and no lock-delay", e, err, "url test")
	}
	if err := el.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Closed, the elector released the key and destroyed its session.
	pair, _, _ = admin.KV().Get("custom/leader-key", nil)
	if pair == nil || pair.Session != "" {
		t.Errorf("key after Close = %+v; want released", pair)
	}
	if e, _, _ := admin.Session().Info(l.Session.ID, nil); e != nil {
		t.Errorf("session after Close = %+v; want destroyed", e)
	}
}

// TestCheckBoundSession checks a session bound to a TTL check: its only
// check is its own, the session has the backstop TTL, and Close removes
// the check's service.
func TestCheckBoundSession(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	o := candidate(t, srv, "checkbound", "a")
	o.CheckTTL, o.TTL = 2*time.Second, 0
	el, ev := start(t, o)
	l := ev.wait(t, 10*time.Second, "leader call", leads)
	check := l.Session.Fields["check"]
	if check == "" || l.Session.TTL != 2*time.Second || l.Session.Fields["check_ttl"] != "2s" || l.Session.Fields["session_ttl"] != "10s" {
		t.Fatalf("Session = %+v", l.Session)
	}
	e, _, err := admin.Session().Info(l.Session.ID, nil)
	if err != nil || e == nil {
		t.Fatalf("session info: %v", err)
	}
	if len(e.NodeChecks) != 0 || len(e.ServiceChecks) != 1 || e.ServiceChecks[0].ID != check || e.LockDelay != 0 || e.TTL != "10s" {
		t.Errorf("session = node checks %v, service checks %v, lock-delay %v, TTL %s", e.NodeChecks, e.ServiceChecks, e.LockDelay, e.TTL)
	}
	// The check stays passing across several of its TTLs.
	time.Sleep(3 * time.Second)
	checks, err := admin.Agent().Checks()
	if err != nil || checks[check] == nil || checks[check].Status != "passing" {
		t.Fatalf("agent check %s = %+v, %v; want passing", check, checks[check], err)
	}
	if cur := leaderOf(t, admin, "checkbound"); cur.Session != l.Session.ID {
		t.Fatalf("leadership moved to %s", cur.Session)
	}
	if err := el.Close(context.Background()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	services, err := admin.Agent().Services()
	if err != nil {
		t.Fatal(err)
	}
	for id, s := range services {
		if s.Service == consul.CheckServiceName {
			t.Errorf("service %s left registered after Close", id)
		}
	}
}
