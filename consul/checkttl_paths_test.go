package consul_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// TestCheckTTLDefaultsTTLOnEveryPath configures a check-bound elector
// without a TTL in the three ways the package documents, and checks on a
// real agent that each leads with the TTL of its check.
func TestCheckTTLDefaultsTTLOnEveryPath(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	ctx := context.Background()
	u := &url.URL{Scheme: consul.Scheme, Host: srv.Addr, RawQuery: "checkTTL=2s"}
	paths := []struct {
		name string
		open func(o election.Options) (*election.Elector, error)
	}{
		{"consul.New", func(o election.Options) (*election.Elector, error) {
			return consul.New(newClient(t, srv.Addr, ""), consul.Options{Options: o, CheckTTL: 2 * time.Second})
		}},
		{"consul.OpenURL", func(o election.Options) (*election.Elector, error) { return consul.OpenURL(ctx, u, o) }},
		{"backends.Open", func(o election.Options) (*election.Elector, error) { return backends.Open(ctx, u.String(), o) }},
	}
	for _, p := range paths {
		t.Run(p.name, func(t *testing.T) {
			el, err := p.open(election.Options{Resource: "checkttl-paths-" + p.name, ID: "a"})
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			ev := newEvents()
			sctx, cancel := context.WithCancel(ctx)
			defer func() {
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				defer ccancel()
				if err := el.Close(cctx); err != nil {
					t.Errorf("Close: %v", err)
				}
				cancel()
			}()
			if err := el.Start(sctx, ev.handler); err != nil {
				t.Fatal(err)
			}
			l := ev.wait(t, 10*time.Second, "leadership", leads)
			if l.Session.TTL != 2*time.Second || l.Session.Fields["check_ttl"] != "2s" {
				t.Errorf("session %+v; want TTL 2s and check_ttl 2s", l.Session)
			}
		})
	}
}
