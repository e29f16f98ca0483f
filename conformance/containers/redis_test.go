package containers

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/testcontainers/testcontainers-go"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

// TestRedisConformance runs the suite with the TTL of the redis package's
// own tests, on a server with keyspace notifications off, its default.
func TestRedisConformance(t *testing.T) {
	addr := redisServer(t)
	st := &redisConformance{addr: addr, admin: newRedisClient(t, addr)}
	conformance.Run(t, conformance.Config{
		Name:     "redis",
		TTL:      time.Second,
		Parallel: true,
		Open:     func(*testing.T) conformance.Store { return st },
	})
}

// redisServer returns the address of the Redis server to test: the one
// REDIS_ADDR names, or one in a container, without persistence, that is
// removed when t ends.
func redisServer(t *testing.T) string {
	t.Helper()
	switch addrs := redisStore.addrs(); len(addrs) {
	case 0:
	case 1:
		return addrs[0]
	default:
		t.Fatalf("%s: want one address, got %q", redisStore.addrVar, addrs)
	}
	requireDocker(t)
	ctx := startContext(t)
	c, err := tcredis.Run(ctx, redisStore.image(),
		testcontainers.WithCmdArgs("--save", "", "--appendonly", "no"),
		onLoopback(),
		logTo(t),
	)
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("start Redis (%s): %v", redisStore.image(), err)
	}
	u, err := c.ConnectionString(ctx)
	if err != nil {
		t.Fatalf("Redis address: %v", err)
	}
	return strings.TrimPrefix(u, "redis://")
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

// newRedisClient returns a client of addr, closed when t ends.
func newRedisClient(t testing.TB, addr string) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// redisConformance is the conformance.Store of one Redis server: every
// candidate is opened from a redis:// URL, through a proxy of its own.
type redisConformance struct {
	addr  string
	admin *goredis.Client
}

var _ conformance.SessionStore = (*redisConformance)(nil)

func (s *redisConformance) NewCandidate(t testing.TB, opts election.Options) (*election.Elector, conformance.Link, error) {
	p := testserver.NewProxy(t, s.addr)
	u := &url.URL{Scheme: "redis", Host: p.Addr()}
	el, err := redis.OpenURL(context.Background(), u, opts)
	return el, p, err
}

// NewSharedSession opens a backend from a redis:// URL, through a proxy of
// its own, closed when t ends, and a shared session on it.
func (s *redisConformance) NewSharedSession(t testing.TB, o election.SessionOptions) (*election.SharedSession, conformance.Link, error) {
	p := testserver.NewProxy(t, s.addr)
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

// Remove deletes the leader key: a Redis session is only a token in that
// key, so deleting the key ends the session as well. A session that leads
// other resources too (a shared session) loses every key its token holds
// with RemoveSession.
func (s *redisConformance) Remove(t testing.TB, resource string, what conformance.Removal) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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
