package redis_test

import (
	"context"
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
		before := rec.Highest()
		lost := time.Now()
		if how == "FLUSHALL" {
			if err := admin.FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
		} else {
			srv.Restart()
		}
		back := time.Now()
		l, ok := rec.WaitLeader(lost, back.Sub(lost)+ttl)
		if !ok {
			t.Fatalf("loss %d (%s): no new leader within one TTL (%v); calls:\n%s", i+1, how, ttl, rec.Since(lost))
		}
		leader = l
		t.Logf("loss %d (%s): server back after %v; %s leads %v later with term %d (highest before: %d)",
			i+1, how, back.Sub(lost).Round(time.Millisecond), l.ID, max(l.At.Sub(back), 0).Round(time.Millisecond), l.L.Term, before)
		if l.L.Term <= before {
			t.Errorf("loss %d (%s): the first leader after the loss got term %d, not above the %d announced before", i+1, how, l.L.Term, before)
		}
		time.Sleep(2 * ttl)
		if n := rec.LeaderCallsSince(l.At); n != 1 {
			t.Errorf("loss %d (%s): %d leader calls in the 2 TTLs after the first election, want 1:\n%s", i+1, how, n, rec.Since(l.At))
		}
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
