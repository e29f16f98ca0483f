package consul_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// TestTLS opens electors over HTTPS: with the agent's authority they lead;
// without it the handler is told that the certificate is not trusted.
func TestTLS(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{TLS: true})
	open := func(query string) (*election.Elector, *events) {
		u := &url.URL{Scheme: consul.SchemeTLS, Host: srv.HTTPSAddr, RawQuery: query}
		el, err := consul.OpenURL(context.Background(), u, election.Options{Resource: "tls", TTL: 10 * time.Second})
		if err != nil {
			t.Fatalf("OpenURL(%s): %v", u, err)
		}
		ev := newEvents()
		if err := el.Start(context.Background(), ev.handler); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = el.Close(context.Background()) })
		return el, ev
	}
	_, trusted := open(url.Values{"caFile": {srv.CAFile}, "tlsServerName": {"server.dc1.consul"}}.Encode())
	trusted.wait(t, 10*time.Second, "leader call over TLS", leads)

	// A server name the agent's certificate does not hold is refused.
	_, wrongName := open(url.Values{"caFile": {srv.CAFile}, "tlsServerName": {"wrong.example"}}.Encode())
	if got := wrongName.wait(t, 10*time.Second, "TLS error", func(ev event) bool { return ev.Err != nil }); !strings.Contains(got.Err.Error(), "certificate") {
		t.Errorf("Err with tlsServerName=wrong.example = %v; want a certificate error", got.Err)
	}

	_, untrusted := open("")
	got := untrusted.wait(t, 10*time.Second, "TLS error", func(ev event) bool { return ev.Err != nil })
	if !strings.Contains(got.Err.Error(), "certificate") {
		t.Errorf("Err = %v; want a certificate error", got.Err)
	}
}
