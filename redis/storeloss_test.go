package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

// TestLostDataSettles loses the server's data under three electors, by
// FLUSHALL and by a restart without persistence, several times each: the
// electors must settle on one leader within one TTL of the loss and keep
// it for two more TTLs; every handler must be given terms that never
// decrease, and the first leader after a loss a term above every term
// announced before it.
func TestLostDataSettles(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	const ttl = 2 * time.Second
	rec := &conformance.TermLog{}
	ids := []string{"a", "b", "c"}
	for _, id := range ids {
		o := opts("lost", id)
		o.TTL = ttl
		startWith(t, client(t, srv.Addr()), o, rec.Handler(id))
	}
	leader, ok := rec.WaitLeader(time.Now(), 5*time.Second)
	if !ok {
		t.Fatal("no leader within 5 s")
	}
	for i, how := range []string{"FLUSHALL", "restart", "FLUSHALL", "restart"} {
		if !rec.WaitTold(ids, leader.L.Term, ttl) {
			t.Fatalf("loss %d: not every elector was told term %d within %v:\n%s", i+1, leader.L.Term, ttl, rec.Since(leader.At))
		}
		time.Sleep(ttl / 2) // some renewals first
		leader = rec.CheckSettles(t, fmt.Sprintf("loss %d (%s)", i+1, how), ttl, func() {
			if how == "FLUSHALL" {
				if err := admin.FlushAll(context.Background()).Err(); err != nil {
					t.Fatal(err)
				}
			} else {
				srv.Restart()
			}
		})
	}
	rec.CheckMonotonic(t)
}

// startWith builds and starts an elector with handler h on c; it is closed
// when t ends.
func startWith(t testing.TB, c goredis.UniversalClient, o redis.Options, h election.Handler) *election.Elector {
	t.Helper()
	el, err := redis.New(c, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := el.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := el.Start(context.Background(), h); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return el
}
