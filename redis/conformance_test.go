package redis_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
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

var _ conformance.SessionStore = conformanceStore{}

// NewSharedSession opens a backend through a proxy of its own, closed when
// t ends, and a shared session on it.
func (s conformanceStore) NewSharedSession(t testing.TB, o election.SessionOptions) (*election.SharedSession, conformance.Link, error) {
	p := testserver.NewProxy(t, s.srv.Addr())
	b, err := redis.OpenBackend(context.Background(), &url.URL{Scheme: "redis", Host: p.Addr()}, election.Options{})
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close the backend of a shared session: %v", err)
		}
	})
	ss, err := election.NewSharedSession(b, o)
	return ss, p, err
}

// Remove deletes the leader key: a session is only a token, so deleting
// the key ends it as well. A session that leads other resources too (a
// shared session) loses every key its token holds with RemoveSession.
func (s conformanceStore) Remove(t testing.TB, resource string, what conformance.Removal) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	key := redis.DefaultKeyPrefix + ":{" + resource + "}:leader"
	if what == conformance.RemoveSession {
		if n, err := removeToken(ctx, s.admin, key); err != nil || n == 0 {
			t.Fatalf("remove the session of the leader of %q: deleted %d keys, %v", resource, n, err)
		}
		return
	}
	n, err := s.admin.Del(ctx, key).Result()
	if err != nil || n != 1 {
		t.Fatalf("remove the leader of %q: deleted %d keys, %v", resource, n, err)
	}
}

// removeToken deletes key and every other leader key held by the token
// that holds key (a record starts with its session's token and a newline),
// and the lease key of a shared session, "<prefix>:lease:<token>", if the
// token is one's.
func removeToken(ctx context.Context, c goredis.UniversalClient, key string) (int64, error) {
	rec, err := c.Get(ctx, key).Result()
	if err != nil {
		return 0, err
	}
	token, _, ok := strings.Cut(rec, "\n")
	if !ok {
		return 0, fmt.Errorf("record of %s has no token: %q", key, rec)
	}
	if err := c.Del(ctx, redis.DefaultKeyPrefix+":lease:"+token).Err(); err != nil {
		return 0, err
	}
	var n int64
	iter := c.Scan(ctx, 0, redis.DefaultKeyPrefix+":{*}:leader", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		v, err := c.Get(ctx, k).Result()
		if err != nil || !strings.HasPrefix(v, token+"\n") {
			continue // gone, or another session's
		}
		d, err := c.Del(ctx, k).Result()
		if err != nil {
			return n, err
		}
		n += d
	}
	return n, iter.Err()
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
