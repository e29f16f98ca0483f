package redis_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

func TestOptionsValidate(t *testing.T) {
	ok := redis.Options{Options: election.Options{Resource: "res"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	if d := ok.WithDefaults(); d.Redis.KeyPrefix != redis.DefaultKeyPrefix || d.Redis.Logger == nil || d.TTL != election.DefaultTTL || d.Redis.MaxRequests != redis.DefaultMaxRequests {
		t.Fatalf("WithDefaults = %+v", d)
	}
	cases := []struct {
		field string
		edit  func(o *redis.Options)
	}{
		{"Resource", func(o *redis.Options) { o.Resource = "" }},
		{"TTL", func(o *redis.Options) { o.TTL = time.Microsecond }},
		{"Redis.KeyPrefix", func(o *redis.Options) { o.Redis.KeyPrefix = "a{b}" }},
		{"Redis.KeyPrefix", func(o *redis.Options) { o.Redis.KeyPrefix = "a b" }},
		{"Redis.KeyPrefix", func(o *redis.Options) { o.Redis.KeyPrefix = "a\x00" }},
		{"Redis.KeyPrefix", func(o *redis.Options) { o.Redis.KeyPrefix = strings.Repeat("p", redis.MaxKeyPrefixLength+1) }},
		{"Redis.MaxRequests", func(o *redis.Options) { o.Redis.MaxRequests = -1 }},
	}
	for _, tc := range cases {
		o := ok
		tc.edit(&o)
		err := o.Validate()
		var oe *election.OptionError
		if !errors.As(err, &oe) || oe.Field != tc.field || !errors.Is(err, election.ErrInvalidOptions) {
			t.Errorf("bad %s: Validate = %v; want an *election.OptionError for %s", tc.field, err, tc.field)
		}
		c := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
		if el, err := redis.New(c, o); err == nil {
			t.Errorf("New accepted a bad %s", tc.field)
			_ = el
		}
		_ = c.Close()
	}
}

func TestNewRejectsNilClient(t *testing.T) {
	_, err := redis.New(nil, redis.Options{Options: election.Options{Resource: "res"}})
	var oe *election.OptionError
	if !errors.As(err, &oe) || oe.Field != "client" {
		t.Fatalf("New(nil) = %v; want an *election.OptionError for client", err)
	}
	if _, err := redis.NewBackend(nil, redis.BackendOptions{}); !errors.As(err, &oe) || oe.Field != "client" {
		t.Fatalf("NewBackend(nil) = %v; want an *election.OptionError for client", err)
	}
	// A nil pointer of a client type is refused too, not dereferenced.
	for _, c := range []goredis.UniversalClient{(*goredis.Client)(nil), (*goredis.ClusterClient)(nil), (*goredis.Ring)(nil)} {
		if _, err := redis.NewBackend(c, redis.BackendOptions{}); !errors.As(err, &oe) || oe.Field != "client" {
			t.Errorf("NewBackend(%T(nil)) = %v; want an *election.OptionError for client", c, err)
		}
		if _, err := redis.New(c, redis.Options{Options: election.Options{Resource: "res"}}); !errors.As(err, &oe) || oe.Field != "client" {
			t.Errorf("New(%T(nil)) = %v; want an *election.OptionError for client", c, err)
		}
	}
}
