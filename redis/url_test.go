package redis_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

func TestOpenURLRejects(t *testing.T) {
	base := election.Options{Resource: "res", TTL: time.Second}
	cases := []struct {
		name, url, want string
	}{
		{"unknown parameter", "redis://127.0.0.1:1?bogus=1", "bogus"},
		{"our parameter twice", "redis://127.0.0.1:1?keyPrefix=a&keyPrefix=b", "keyPrefix given 2 times"},
		{"bad mode", "redis://127.0.0.1:1?mode=ring", "mode"},
		{"bad prefix", "redis://127.0.0.1:1?keyPrefix=a%7Bb", "Redis.KeyPrefix"},
		{"bad database", "redis://127.0.0.1:1/x", "database"},
		{"bad go-redis value", "redis://127.0.0.1:1?dial_timeout=soon", "dial_timeout"},
		{"scheme", "http://127.0.0.1:1", "scheme"},
		{"sentinel without master", "redis://127.0.0.1:1?mode=sentinel", "master_name"},
		{"cluster with unknown", "redis://127.0.0.1:1?mode=cluster&db=1", "db"},
		{"TLS parameter without rediss", "redis://127.0.0.1:1?caFile=ca.pem", "caFile: needs the rediss scheme"},
		{"server name without rediss", "redis://127.0.0.1:1?tlsServerName=n", "tlsServerName: needs the rediss scheme"},
		{"TLS parameter twice", "rediss://127.0.0.1:1?caFile=a.pem&caFile=b.pem", "caFile: must be given once"},
		{"certificate without key", "rediss://127.0.0.1:1?certFile=c.pem", "certFile: and keyFile must be given together"},
		{"missing CA file", "rediss://127.0.0.1:1?caFile=/nonexistent/ca.pem", "caFile: must be a readable PEM file"},
		{"missing certificate", "rediss://127.0.0.1:1?certFile=/nonexistent/c.pem&keyFile=/nonexistent/k.pem", "certFile: and keyFile must be a matching"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			el, err := redis.OpenURL(context.Background(), u, base)
			if err == nil {
				_ = el.Close(context.Background())
				t.Fatalf("OpenURL(%s) succeeded", tc.url)
			}
			t.Log(err)
			if !errors.Is(err, election.ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("OpenURL(%s) = %v; want ErrInvalidOptions mentioning %q", tc.url, err, tc.want)
			}
		})
	}
	t.Run("invalid election options", func(t *testing.T) {
		u, _ := url.Parse("redis://127.0.0.1:1")
		if _, err := redis.OpenURL(context.Background(), u, election.Options{}); !errors.Is(err, election.ErrInvalidOptions) || !strings.Contains(err.Error(), "Resource") {
			t.Fatalf("OpenURL without a resource = %v", err)
		}
	})
	t.Run("nil URL", func(t *testing.T) {
		if _, err := redis.OpenURL(context.Background(), nil, base); !errors.Is(err, election.ErrInvalidOptions) {
			t.Fatalf("OpenURL(nil) = %v", err)
		}
	})
	t.Run("password not echoed", func(t *testing.T) {
		u, _ := url.Parse("redis://user:hunter2@127.0.0.1:1?bogus=1")
		_, err := redis.OpenURL(context.Background(), u, base)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Fatalf("error %v shows the password", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		u, _ := url.Parse("redis://127.0.0.1:1")
		if _, err := redis.OpenURL(ctx, u, base); !errors.Is(err, context.Canceled) {
			t.Fatalf("OpenURL with a cancelled context = %v", err)
		}
	})
}

func TestOpenURL(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	admin.Do(context.Background(), "ACL", "SETUSER", "elector", "on", ">s3cret", "~*", "&*", "+@all")
	u, err := url.Parse("redis://elector:s3cret@" + srv.Addr() + "/2?keyPrefix=myapp&dial_timeout=2s&client_name=elector")
	if err != nil {
		t.Fatal(err)
	}
	o := opts("res", "a").Options
	el, err := redis.OpenURL(context.Background(), u, o)
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	if err := el.Start(context.Background(), ev.handler); err != nil {
		t.Fatal(err)
	}
	ev.wait(t, 0, 3*time.Second, "leader", leading)
	l, err := el.Leader(context.Background())
	if err != nil || !l.IsLeader || l.LeaderID != "a" {
		t.Fatalf("Leader() = %+v, %v", l, err)
	}
	if err := el.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The key lived in database 2 under the prefix; Close released it.
	c2 := client(t, srv.Addr(), func(o *goredis.Options) { o.DB = 2 })
	if n := c2.Exists(context.Background(), "myapp:{res}:term").Val(); n != 1 {
		t.Fatalf("myapp:{res}:term in db 2: %d, want 1", n)
	}
	if n := c2.Exists(context.Background(), "myapp:{res}:leader").Val(); n != 0 {
		t.Fatal("the leader key outlived Close")
	}
}
