package redis_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

// TestLeaderLearnsOfOutsideRemoval measures how soon a leader whose key is
// removed from outside (DEL, FLUSHALL) learns it, as the package documents:
// where the server publishes keyspace events for the key ("K$g"), DEL
// reaches the leader's watch within milliseconds; without them, and for
// FLUSHALL, which publishes no keyspace event, the leader learns it at its
// next renewal, within RenewInterval. RenewInterval is 2 s here, so that
// the two cases are far apart.
func TestLeaderLearnsOfOutsideRemoval(t *testing.T) {
	const renew = 2 * time.Second
	cases := []struct {
		name   string
		events string // notify-keyspace-events
		flush  bool
		within time.Duration // the promise
	}{
		{"DEL without keyspace events", "", false, renew + renew/4},
		{"DEL with K$g", "K$g", false, 300 * time.Millisecond},
		{"FLUSHALL with KA", "KA", true, renew + renew/4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var args []string
			if c.events != "" {
				args = []string{"--notify-keyspace-events", c.events}
			}
			srv := startRedis(t, srvOpts(args...))
			admin := client(t, srv.Addr())
			rec := &conformance.TermLog{}
			o := opts("res", "a")
			o.TTL, o.RenewInterval = 6*time.Second, renew
			startWith(t, client(t, srv.Addr()), o, rec.Handler("a"))
			l, ok := rec.WaitLeader(time.Now(), 5*time.Second)
			if !ok {
				t.Fatal("no leader within 5 s")
			}
			// Past the first renewal, so that the next one is a whole
			// RenewInterval away at most.
			time.Sleep(renew + renew/2)
			removed := time.Now()
			var err error
			if c.flush {
				err = admin.FlushAll(context.Background()).Err()
			} else {
				err = admin.Del(context.Background(), leaderKey).Err()
			}
			if err != nil {
				t.Fatal(err)
			}
			end, ok := rec.WaitFor(l.At, 2*renew+5*time.Second, func(c conformance.TermCall) bool { return c.Ended })
			if !ok {
				t.Fatalf("the leader's term did not end; calls:\n%s", rec.Since(l.At))
			}
			took := end.At.Sub(removed)
			t.Logf("%s: the leader's term ended %v after the removal (RenewInterval %v)", c.name, took.Round(100*time.Microsecond), renew)
			if took > c.within {
				t.Errorf("the leader learned of the removal after %v, want within %v", took, c.within)
			}
			if c.events != "" && !c.flush && took > renew/4 {
				t.Errorf("with keyspace events the leader learned of the DEL after %v, not through its watch", took)
			}
		})
	}
}

// TestLostLeaderAnnouncesRemoval checks that a leader that finds its key
// removed from outside announces it as it steps down: a follower's watch,
// which no keyspace event woke, returns within milliseconds of the leader's
// Close instead of when the key's TTL (20 s) or its wait (20 s) runs out.
func TestLostLeaderAnnouncesRemoval(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	leader := backend(t, client(t, srv.Addr()), redis.BackendOptions{})
	follower := backend(t, client(t, srv.Addr()), redis.BackendOptions{})
	ctx := ctxT(t, 30*time.Second)

	s := session(t, leader, "res", "a", 20*time.Second)
	held := acquire(t, s)
	done := make(chan election.Record, 1)
	go func() {
		r, _ := follower.Watch(ctx, "res", held.Record.Revision, 20*time.Second)
		done <- r
	}()
	time.Sleep(200 * time.Millisecond) // the follower's watch is subscribed
	if err := admin.Del(ctx, leaderKey).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		t.Fatalf("the follower's watch returned %+v without keyspace events", r)
	case <-time.After(200 * time.Millisecond):
	}
	if err := s.Renew(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Fatalf("Renew = %v, want ErrSessionLost", err)
	}
	closed := time.Now()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if !r.Free() {
			t.Fatalf("Watch = %+v, want free", r)
		}
		t.Logf("the follower learned of the removal %v after the leader's Close", time.Since(closed))
	case <-time.After(2 * time.Second):
		t.Fatal("the follower's watch did not return within 2 s of the leader's Close")
	}
}
