package redis_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

// conformanceStore runs the suite's candidates on one server, each through
// its own proxy (its Link), opened from a URL so that the elector owns its
// client.
type conformanceStore struct {
	srv   *testserver.RedisServer
	admin *goredis.Client
}

func (s conformanceStore) NewCandidate(t testing.TB, opts election.Options) (*election.Elector, conformance.Link, error) {
	p := testserver.NewProxy(t, s.srv.Addr())
	u := &url.URL{Scheme: "redis", Host: p.Addr()}
	el, err := redis.OpenURL(context.Background(), u, opts)
	return el, p, err
}

// Remove deletes the leader key for both removals: a session is only a
// token, so deleting the key ends it as well.
func (s conformanceStore) Remove(t testing.TB, resource string, what conformance.Removal) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := s.admin.Del(ctx, redis.DefaultKeyPrefix+":{"+resource+"}:leader").Result()
	if err != nil || n != 1 {
		t.Fatalf("remove the leader of %q: deleted %d keys, %v", resource, n, err)
	}
}

func runConformance(t *testing.T, o testserver.RedisOptions) {
	srv := testserver.StartRedis(t, o)
	admin := client(t, srv.Addr())
	conformance.Run(t, conformance.Config{
		Name:     "redis",
		TTL:      time.Second,
		Parallel: true,
		Open:     func(t *testing.T) conformance.Store { return conformanceStore{srv: srv, admin: admin} },
	})
}

// TestConformance runs the suite on a server with keyspace notifications
// off, its default: followers learn of expiries by their PTTL timers.
func TestConformance(t *testing.T) {
	runConformance(t, testserver.RedisOptions{})
}

// TestConformanceKeyspaceNotifications runs the suite again on a server that
// publishes every keyspace event: renewals then notify the followers, which
// must not take them for changes, and deletions wake them at once.
func TestConformanceKeyspaceNotifications(t *testing.T) {
	if testing.Short() {
		t.Skip("second run of the suite skipped in -short mode")
	}
	runConformance(t, testserver.RedisOptions{Args: []string{"--notify-keyspace-events", "KA"}})
}
