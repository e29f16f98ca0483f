package etcd

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
)

func TestParseURL(t *testing.T) {
	base := election.Options{Resource: "r"}
	good := []struct {
		url       string
		endpoints []string
		prefix    string
		user      string
		dial      time.Duration
		tls       bool
	}{
		{url: "etcd://127.0.0.1:2379", endpoints: []string{"http://127.0.0.1:2379"}, dial: DefaultDialTimeout},
		{url: "etcd://a,b:2380,[::1]:1,[::2]/", endpoints: []string{"http://a:2379", "http://b:2380", "http://[::1]:1", "http://[::2]:2379"}, dial: DefaultDialTimeout},
		{url: "etcd://u:p@h?prefix=%2Fsvc%2Fleader&dialTimeout=2s", endpoints: []string{"http://h:2379"}, prefix: "/svc/leader", user: "u", dial: 2 * time.Second},
		{url: "etcd://h?dialTimeout=1.5", endpoints: []string{"http://h:2379"}, dial: 1500 * time.Millisecond},
		{url: "etcd://h?dialTimeout=3", endpoints: []string{"http://h:2379"}, dial: 3 * time.Second},
		{url: "etcds://h", endpoints: []string{"https://h:2379"}, dial: DefaultDialTimeout, tls: true},
	}
	for _, tc := range good {
		u, err := url.Parse(tc.url)
		if err != nil { // url.Parse rejects IPv6 literals in a list
			scheme, rest, _ := strings.Cut(tc.url, "://")
			u = &url.URL{Scheme: scheme, Host: strings.TrimSuffix(rest, "/")}
		}
		cfg, o, err := parseURL(u, base)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if strings.Join(cfg.Endpoints, " ") != strings.Join(tc.endpoints, " ") || o.Prefix != tc.prefix ||
			cfg.Username != tc.user || cfg.DialTimeout != tc.dial || (cfg.TLS != nil) != tc.tls || o.Resource != "r" {
			t.Errorf("%s: endpoints %v prefix %q user %q dial %v tls %v", tc.url, cfg.Endpoints, o.Prefix, cfg.Username, cfg.DialTimeout, cfg.TLS != nil)
		}
	}

	bad := []struct{ url, mention string }{
		{"consul://h", "scheme"},
		{"etcd://", "host"},
		{"etcd://h:0", "port"},
		{"etcd://h:99999", "port"},
		{"etcd://h,:1", "host"},
		{"etcd://h/some/path", "path"},
		{"etcd://h?ttl=5s&bogus=1", `"bogus", "ttl"`},
		{"etcd://h?prefix=a&prefix=b", "once"},
		{"etcd://h?prefix=", "prefix"},
		{"etcd://h?dialTimeout=soon", "dialTimeout"},
		{"etcd://h?dialTimeout=-1s", "dialTimeout"},
		{"etcd://h?dialTimeout=0", "dialTimeout"},
		{"etcd://h?dialTimeout=1e300", "dialTimeout"},
		{"etcd://h?ca=x.pem", "etcds"},
		{"etcds://h?cert=c.pem", "key"},
		{"etcds://h?ca=/nonexistent/ca.pem", "ca"},
		{"etcd://h?caFile=x.pem", "caFile"},
		{"etcd://h?tlsServerName=n", "etcds"},
		{"etcds://h?certFile=c.pem", "keyFile"},
		{"etcds://h?caFile=/nonexistent/ca.pem", "caFile"},
		{"etcds://h?ca=a.pem&caFile=b.pem", "ca: is a deprecated alias of caFile"},
		{"etcds://h?cert=a.pem&certFile=b.pem", "cert: is a deprecated alias of certFile"},
		{"etcds://h?key=a.pem&keyFile=b.pem", "key: is a deprecated alias of keyFile"},
		{"etcds://h?caFile=a.pem&caFile=b.pem", "once"},
		{"etcd://h?bogus=1", "caFile, certFile, dialTimeout, keyFile, prefix, tlsServerName"},
		{"etcd://:pw@h", "user"},
	}
	for _, tc := range bad {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = parseURL(u, base)
		if err == nil || !errors.Is(err, election.ErrInvalidOptions) || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: error %v; want an invalid option mentioning %s", tc.url, err, tc.mention)
		}
	}
	if _, _, err := parseURL(nil, base); !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("nil URL: %v", err)
	}
	if strings.Contains(func() string {
		u, _ := url.Parse("etcd://u:secret@h?bogus=1")
		_, _, err := parseURL(u, base)
		return err.Error()
	}(), "secret") {
		t.Error("an error shows the password")
	}
}

func TestOpenURLRejects(t *testing.T) {
	ctx := testCtx(t, 5*time.Second)
	u, _ := url.Parse("etcd://127.0.0.1:1")
	if _, err := OpenURL(ctx, u, election.Options{Resource: "r", TTL: 2500 * time.Millisecond}); !errors.Is(err, election.ErrInvalidOptions) || !strings.Contains(err.Error(), "TTL") {
		t.Errorf("TTL of 2.5s: %v", err)
	}
	if _, err := OpenURL(ctx, u, election.Options{}); !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("no resource: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := OpenURL(cancelled, u, election.Options{Resource: "r"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func TestOpenURL(t *testing.T) {
	srv := startEtcd(t)
	ctx := testCtx(t, 30*time.Second)
	u, err := url.Parse("etcd://" + srv.Endpoint() + "?prefix=services/billing/leader&dialTimeout=3s")
	if err != nil {
		t.Fatal(err)
	}
	el, err := OpenURL(ctx, u, election.Options{Resource: "billing", ID: "url", TTL: MinTTL})
	if err != nil {
		t.Fatal(err)
	}
	led := make(chan election.Leadership, 1)
	if err := el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			led <- l
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	select {
	case l := <-led:
		if !strings.HasPrefix(l.Session.Fields["key"], "services/billing/leader/") {
			t.Errorf("leader key %q is not under the URL's prefix", l.Session.Fields["key"])
		}
	case <-ctx.Done():
		t.Fatal("the URL's elector did not lead")
	}
	if err := el.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// The elector closed its own client: goleak in TestMain checks it.
}

func TestOpenURLTLS(t *testing.T) {
	t.Run("names", func(t *testing.T) { testOpenURLTLS(t, "caFile", "certFile", "keyFile") })
	t.Run("aliases", func(t *testing.T) { testOpenURLTLS(t, "ca", "cert", "key") })
}

// TestOpenURLTLSServerName checks that tlsServerName is the name verified
// in the member's certificate: one the certificate does not hold fails.
func TestOpenURLTLSServerName(t *testing.T) {
	srv := testserver.StartEtcd(t, testserver.EtcdOptions{TLS: true, ClientCertAuth: true})
	ca, cert, key := srv.TLSFiles()
	ctx := testCtx(t, 30*time.Second)
	for _, tc := range []struct {
		name string
		ok   bool
	}{{"localhost", true}, {"wrong.example", false}} {
		q := url.Values{"caFile": {ca}, "certFile": {cert}, "keyFile": {key}, "tlsServerName": {tc.name}}
		u := &url.URL{Scheme: "etcds", Host: srv.Endpoint(), RawQuery: q.Encode()}
		el, err := OpenURL(ctx, u, election.Options{Resource: "tls", TTL: MinTTL})
		if err != nil {
			t.Fatal(err)
		}
		short, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err = el.Leader(short)
		cancel()
		_ = el.Close(ctx)
		if (err == nil) != tc.ok {
			t.Errorf("Leader() with tlsServerName=%s: %v; want success %v", tc.name, err, tc.ok)
		}
	}
}

func testOpenURLTLS(t *testing.T, caName, certName, keyName string) {
	srv := testserver.StartEtcd(t, testserver.EtcdOptions{TLS: true, ClientCertAuth: true})
	ca, cert, key := srv.TLSFiles()
	ctx := testCtx(t, 30*time.Second)
	q := url.Values{caName: {ca}, certName: {cert}, keyName: {key}}
	u := &url.URL{Scheme: "etcds", Host: srv.Endpoint(), RawQuery: q.Encode()}
	el, err := OpenURL(ctx, u, election.Options{Resource: "tls", ID: "tls", TTL: MinTTL})
	if err != nil {
		t.Fatal(err)
	}
	defer el.Close(ctx)
	if l, err := el.Leader(ctx); err != nil || l.LeaderID != "" {
		t.Fatalf("Leader() over TLS = %+v, %v; want no leader", l, err)
	}

	// Without the client certificate, the member refuses the connection.
	delete(q, certName)
	delete(q, keyName)
	u.RawQuery = q.Encode()
	el2, err := OpenURL(ctx, u, election.Options{Resource: "tls", TTL: MinTTL})
	if err != nil {
		t.Fatal(err)
	}
	defer el2.Close(ctx)
	short, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := el2.Leader(short); err == nil {
		t.Fatal("Leader() without a client certificate succeeded")
	}
}

// TestReconnectWithinMinTTL: a client of OpenURL tries a lost connection
// again soon enough, jitter included, for electors of the shortest TTL to
// reconnect and settle on a leader within one TTL of etcd's return
// (TestLostDataSettles), with two thirds of the TTL left to acquire.
func TestReconnectWithinMinTTL(t *testing.T) {
	b := reconnectParams(DefaultDialTimeout).Backoff
	worst := time.Duration(float64(b.MaxDelay) * (1 + b.Jitter))
	if worst > MinTTL/3 {
		t.Errorf("a lost connection may wait %v before its next attempt, more than a third of MinTTL (%v)", worst, MinTTL)
	}
}
