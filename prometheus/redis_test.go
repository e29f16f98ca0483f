package leaderprom_test

import (
	"context"
	"math"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
	leaderprom "github.com/consul-leader/consul-leader/prometheus"
	"github.com/consul-leader/consul-leader/redis"
)

// TestRedis follows two processes on a real Redis server: the leader cut
// off from it steps down by its step-down deadline, counted as
// store_unreachable with failed renewals, the other takes over, and a
// release hands the leadership back.
func TestRedis(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{})
	proxy := testserver.NewProxy(t, srv.Addr())
	const ttl = 2 * time.Second
	pa, pb := newProc(t, leaderprom.Options{}), newProc(t, leaderprom.Options{})
	pa.m.Track("r")
	pb.m.Track("r")
	a := startRedisElector(t, pa, proxy.Addr(), election.Options{Resource: "r", ID: "a", TTL: ttl})
	pa.waitValue(t, 1, 5*time.Second, "leader_election_is_leader", "resource", "r")
	b := startRedisElector(t, pb, srv.Addr(), election.Options{Resource: "r", ID: "b", TTL: ttl})
	time.Sleep(ttl / 2)
	pb.expect(t, `leader_election_is_leader{resource="r"} 0`)

	// a cut off: it steps down by TTL - StepDownMargin after the start of
	// its last successful renewal.
	last := pa.value(t, "leader_election_last_renewal_timestamp_seconds", "resource", "r")
	proxy.Cut()
	if math.IsNaN(last) {
		t.Fatal("no last_renewal_timestamp_seconds while leading")
	}
	// The store keeps the session until at least last + TTL: is_leader
	// must be 0 before, whatever the scheduling delays.
	deadline := time.Unix(0, int64(last*1e9)).Add(ttl - election.StepDownMargin(ttl))
	pa.waitValue(t, 0, time.Until(deadline)+election.StepDownMargin(ttl), "leader_election_is_leader", "resource", "r")
	t.Logf("is_leader 0 %v after the step-down deadline", time.Since(deadline).Round(time.Millisecond))
	if v := pa.value(t, "leader_election_terms_ended_total", "resource", "r", "cause", "store_unreachable"); v != 1 {
		t.Errorf("terms ended for store_unreachable: %v, want 1", v)
	}
	if v := pa.value(t, "leader_election_store_errors_total", "op", "renew"); !(v >= 1) {
		t.Errorf("store errors of renew: %v, want at least 1", v)
	}
	pb.waitValue(t, 1, 2*ttl, "leader_election_is_leader", "resource", "r")
	proxy.Heal()

	// b releases: a leads again.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	pa.waitValue(t, 1, 5*time.Second, "leader_election_is_leader", "resource", "r")
	pa.expect(t, `leader_election_terms_started_total{resource="r"} 2`)
	pb.expect(t,
		`leader_election_is_leader{resource="r"} 0`,
		`leader_election_terms_started_total{resource="r"} 1`,
		`leader_election_terms_ended_total{cause="released",resource="r"} 1`)
	_ = a
}

func startRedisElector(t *testing.T, p *proc, addr string, opts election.Options) *election.Elector {
	t.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	opts.Observers = []*election.Observer{p.m.Observer()}
	opts.Logger = quiet
	el, err := redis.New(c, redis.Options{Options: opts})
	if err != nil {
		t.Fatal(err)
	}
	if err := el.Start(context.Background(), waitForEnd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := el.Close(ctx); err != nil {
			t.Errorf("Close %s: %v", opts.ID, err)
		}
	})
	return el
}

// waitValue waits until the series of metric name with labels has value
// want, polling p's registry.
func (p *proc) waitValue(t *testing.T, want float64, within time.Duration, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		v := p.value(t, name, labels...)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v is %v after %v, want %v", name, labels, v, within, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRedisSharedSessionLost: on a real Redis server, a shared session
// whose lease key is deleted from outside is found gone by its next
// renewal: every term on it ends as session_lost, and the resources are
// led again on a new session.
func TestRedisSharedSessionLost(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{})
	const ttl = time.Second
	p := newProc(t, leaderprom.Options{})
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	backend, err := redis.NewBackend(c, redis.BackendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = backend.Close() })
	sess, err := election.NewSharedSession(backend, election.SessionOptions{TTL: ttl, Logger: quiet, Observers: []*election.Observer{p.m.Observer()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sess.Close(ctx); err != nil {
			t.Errorf("close the shared session: %v", err)
		}
	})
	resources := []string{"r1", "r2", "r3"}
	for _, r := range resources {
		el, err := election.New(backend, election.Options{Resource: r, Session: sess, Logger: quiet, Observers: []*election.Observer{p.m.Observer()}})
		if err != nil {
			t.Fatal(err)
		}
		if err := el.Start(context.Background(), waitForEnd); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := el.Close(ctx); err != nil {
				t.Errorf("Close %s: %v", r, err)
			}
		})
	}
	for _, r := range resources {
		p.waitValue(t, 1, 5*time.Second, "leader_election_is_leader", "resource", r)
	}
	time.Sleep(ttl / 2) // a renewal
	for _, r := range resources {
		if v := p.value(t, "leader_election_last_renewal_timestamp_seconds", "resource", r); math.IsNaN(v) {
			t.Errorf("%s: no last_renewal_timestamp_seconds while leading", r)
		}
	}
	lease := sess.Info().Fields["lease"]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := c.Del(ctx, lease).Result(); err != nil || n != 1 {
		t.Fatalf("delete the lease key %q: %d, %v", lease, n, err)
	}
	opts := sess.Options()
	for _, r := range resources {
		p.waitValue(t, 1, opts.RenewInterval+opts.RequestTimeout+ttl/4, "leader_election_terms_ended_total", "resource", r, "cause", "session_lost")
	}
	for _, r := range resources {
		p.waitValue(t, 2, 5*time.Second, "leader_election_terms_started_total", "resource", r)
		p.waitValue(t, 1, time.Second, "leader_election_is_leader", "resource", r)
	}
	p.expect(t,
		`leader_election_terms_ended_total{cause="session_lost",resource="r1"} 1`,
		`leader_election_terms_ended_total{cause="session_lost",resource="r2"} 1`,
		`leader_election_terms_ended_total{cause="session_lost",resource="r3"} 1`)
}
