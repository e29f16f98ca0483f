package redis_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

func TestTLS(t *testing.T) {
	srv := startRedis(t, testserver.RedisOptions{TLS: true})
	c := client(t, srv.Addr(), func(o *goredis.Options) { o.TLSConfig = srv.ClientTLS() })
	_, ev := start(t, c, opts("res", "a"))
	l, _ := ev.wait(t, 0, 3*time.Second, "leader", leading)
	if l.Term != 1 {
		t.Fatalf("term %d, want 1", l.Term)
	}

	// A client that does not trust the server's certificate is told why.
	untrusted := client(t, srv.Addr(), func(o *goredis.Options) { o.TLSConfig = &tlsNoRoots })
	_, ev2 := start(t, untrusted, opts("res", "b"))
	bad, _ := ev2.wait(t, 0, 3*time.Second, "error", func(l election.Leadership) bool { return l.Err != nil })
	t.Logf("untrusted client: %v", bad.Err)
}

func TestTLSOpenURL(t *testing.T) {
	srv := startRedis(t, testserver.RedisOptions{TLS: true})
	u := &url.URL{Scheme: "rediss", Host: srv.Addr(), RawQuery: "skip_verify=true"}
	el, err := redis.OpenURL(context.Background(), u, opts("res", "a").Options)
	if err != nil {
		t.Fatal(err)
	}
	defer el.Close(context.Background())
	ev := newEvents()
	if err := el.Start(context.Background(), ev.handler); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, 0, 3*time.Second, "leader", leading)
}

// TestTLSOpenURLFiles opens rediss URLs with the TLS parameters shared with
// consuls and etcds: trusting the server's authority from caFile, with a
// client certificate, and verifying tlsServerName.
func TestTLSOpenURLFiles(t *testing.T) {
	srv := startRedis(t, testserver.RedisOptions{TLS: true})
	ca, cert, key := srv.TLSFiles()
	for _, tc := range []struct {
		name  string
		query url.Values
		ok    bool
	}{
		{"caFile", url.Values{"caFile": {ca}}, true},
		{"client certificate", url.Values{"caFile": {ca}, "certFile": {cert}, "keyFile": {key}}, true},
		{"tlsServerName", url.Values{"caFile": {ca}, "tlsServerName": {"localhost"}}, true},
		{"wrong tlsServerName", url.Values{"caFile": {ca}, "tlsServerName": {"wrong.example"}}, false},
		{"no caFile", url.Values{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &url.URL{Scheme: "rediss", Host: srv.Addr(), RawQuery: tc.query.Encode()}
			el, err := redis.OpenURL(context.Background(), u, opts("res", "a").Options)
			if err != nil {
				t.Fatal(err)
			}
			defer el.Close(context.Background())
			ev := newEvents()
			if err := el.Start(context.Background(), ev.handler); err != nil {
				t.Fatal(err)
			}
			if tc.ok {
				ev.wait(t, 0, 3*time.Second, "leader", leading)
				return
			}
			// The handshake fails within the request's deadline, which the
			// backend reports rather than the certificate error.
			bad, _ := ev.wait(t, 0, 3*time.Second, "error", func(l election.Leadership) bool { return l.Err != nil })
			t.Logf("refused: %v", bad.Err)
			ev.mu.Lock()
			defer ev.mu.Unlock()
			for _, l := range ev.calls {
				if l.IsLeader {
					t.Errorf("led over an unverified connection: %+v", l)
				}
			}
		})
	}
}

func TestCluster(t *testing.T) {
	srv := startRedis(t, testserver.RedisOptions{Cluster: true})
	var els []*election.Elector
	var evs []*events
	for _, id := range []string{"a", "b"} {
		u := &url.URL{Scheme: "redis", Host: srv.Addr(), RawQuery: "mode=cluster&keyPrefix=app"}
		el, err := redis.OpenURL(context.Background(), u, opts("res", id).Options)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = el.Close(context.Background()) })
		ev := newEvents()
		if err := el.Start(context.Background(), ev.handler); err != nil {
			t.Fatal(err)
		}
		els, evs = append(els, el), append(evs, ev)
	}
	l, id := either(t, evs[0], evs[1], 0, 0, 5*time.Second)
	leader, follower := 0, 1
	if id == "b" {
		leader, follower = 1, 0
	}
	evs[follower].wait(t, 0, 3*time.Second, "follower told", func(x election.Leadership) bool { return x.LeaderID == l.LeaderID })
	from := evs[follower].len()
	released := time.Now()
	if err := els[leader].Release(ctxT(t, 2*time.Second)); err != nil {
		t.Fatal(err)
	}
	next, _ := evs[follower].wait(t, from, 3*time.Second, "handover", leading)
	if next.Term <= l.Term {
		t.Fatalf("term %d after %d", next.Term, l.Term)
	}
	t.Logf("cluster handover in %v", time.Since(released))
	admin := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{srv.Addr()}})
	defer admin.Close()
	if n := admin.Exists(context.Background(), "app:{res}:leader").Val(); n != 1 {
		t.Fatalf("key app:{res}:leader exists %d times, want 1", n)
	}
}
