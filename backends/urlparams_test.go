package backends_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/election"
)

// TestTLSParametersOfEveryStore: consuls, etcds and rediss URLs take the
// same TLS parameters, checked the same way before any connection: a file
// that cannot be read, or a certificate without its key, is an error naming
// the parameter; on the plain scheme, any of them is refused by name.
func TestTLSParametersOfEveryStore(t *testing.T) {
	ctx := context.Background()
	opts := election.Options{Resource: "r", TTL: 15 * time.Second}
	for _, s := range []struct{ plain, tls string }{{"consul", "consuls"}, {"etcd", "etcds"}, {"redis", "rediss"}} {
		for _, c := range []struct{ raw, name string }{
			{s.tls + "://127.0.0.1:1?caFile=/nonexistent/ca.pem", "caFile"},
			{s.tls + "://127.0.0.1:1?certFile=/nonexistent/cert.pem", "certFile"},
			{s.tls + "://127.0.0.1:1?keyFile=/nonexistent/key.pem", "keyFile"},
			{s.tls + "://127.0.0.1:1?certFile=/nonexistent/cert.pem&keyFile=/nonexistent/key.pem", "certFile"},
			{s.plain + "://127.0.0.1:1?caFile=/nonexistent/ca.pem", "caFile"},
			{s.plain + "://127.0.0.1:1?tlsServerName=leader.example", "tlsServerName"},
		} {
			el, err := backends.Open(ctx, c.raw, opts)
			if err == nil {
				_ = el.Close(ctx)
				t.Errorf("%s: opened an elector", c.raw)
				continue
			}
			if !errors.Is(err, election.ErrInvalidOptions) || !strings.Contains(err.Error(), c.name) {
				t.Errorf("%s: %v; want an invalid option naming %s", c.raw, err, c.name)
			}
		}
	}
}

// TestDurationParametersOfEveryStore: every store's URL takes its
// durations as a Go duration or a plain number of seconds: 15 is 15s, and
// 1 is a second, which Consul's and etcd's TTL bounds refuse by name.
func TestDurationParametersOfEveryStore(t *testing.T) {
	ctx := context.Background()
	opts := election.Options{Resource: "r"}
	for _, raw := range []string{
		"consul://127.0.0.1:1?ttl=15&lockDelay=15&checkTTL=15", "consul://127.0.0.1:1?ttl=15s&lockDelay=15s&checkTTL=15s",
		"etcd://127.0.0.1:1?ttl=15&dialTimeout=15", "etcd://127.0.0.1:1?ttl=15s&dialTimeout=15s",
		"redis://127.0.0.1:1?ttl=15&dial_timeout=15", "redis://127.0.0.1:1?ttl=15s&dial_timeout=15s",
	} {
		el, err := backends.Open(ctx, raw, opts)
		if err != nil {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		_ = el.Close(ctx)
	}
	for _, raw := range []string{"consul://127.0.0.1:1?ttl=1", "etcd://127.0.0.1:1?ttl=1"} {
		el, err := backends.Open(ctx, raw, opts)
		var oe *election.OptionError
		if !errors.As(err, &oe) || oe.Field != "TTL" {
			if err == nil {
				_ = el.Close(ctx)
			}
			t.Errorf("%s: %v; want an *election.OptionError naming TTL", raw, err)
		}
	}
}
