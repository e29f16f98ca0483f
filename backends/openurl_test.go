package backends_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/etcd"
	"github.com/consul-leader/consul-leader/redis"
)

// TestStoreOpenURLTakesCommonParameters: each store's own OpenURL, which
// opens its URLs without linking the other stores, takes the common
// election parameters as backends.Open does: a TTL out of the store's
// bounds given in the URL is refused, naming the TTL.
func TestStoreOpenURLTakesCommonParameters(t *testing.T) {
	ctx := context.Background()
	opts := election.Options{Resource: "r"}
	for _, c := range []struct {
		raw  string
		open func(context.Context, *url.URL, election.Options) (*election.Elector, error)
	}{
		{"consul://127.0.0.1:1?ttl=1s", consul.OpenURL},
		{"etcd://127.0.0.1:1?ttl=1500ms&dialTimeout=100ms", etcd.OpenURL},
		{"redis://127.0.0.1:1?ttl=1ms", redis.OpenURL},
	} {
		u, err := url.Parse(c.raw)
		if err != nil {
			t.Fatal(err)
		}
		el, err := c.open(ctx, u, opts)
		if err == nil {
			_ = el.Close(ctx)
			t.Errorf("%s: opened an elector", c.raw)
			continue
		}
		var oe *election.OptionError
		if !errors.As(err, &oe) || !strings.Contains(oe.Field, "TTL") {
			t.Errorf("%s: %v; want an *election.OptionError naming the TTL", c.raw, err)
		}
	}
}
