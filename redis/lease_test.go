package redis_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

// otherBackend is a backend of another type that can share sessions.
type otherBackend struct{ *redis.Backend }

// TestSharedSessionBadInput checks the errors of misuse: a session of
// another backend type, another client or key prefix than the session's
// backend, a Redis Cluster client, a second claim of one resource on a
// lease, and invalid parameters.
func TestSharedSessionBadInput(t *testing.T) {
	srv := startRedis(t, srvOpts())
	c := client(t, srv.Addr())
	b, s := newShared(t, c, time.Second)

	check := func(what string, err error, field string) {
		t.Helper()
		var oe *election.OptionError
		if !errors.As(err, &oe) || oe.Field != field {
			t.Errorf("%s: got %v, want an *election.OptionError for %s", what, err, field)
		}
	}
	_, err := redis.New(client(t, srv.Addr()), sharedOpts("bad", "a", s))
	check("another client", err, "client")
	o := sharedOpts("bad", "a", s)
	o.Redis.KeyPrefix = "other"
	_, err = redis.New(nil, o)
	check("another key prefix", err, "Redis.KeyPrefix")
	o = sharedOpts("bad", "a", s)
	o.TTL = 2 * time.Second
	_, err = redis.New(nil, o)
	check("another TTL", err, "TTL")

	ob := otherBackend{b}
	os, err := election.NewSharedSession(ob, election.SessionOptions{TTL: time.Second})
	if err != nil {
		t.Fatalf("NewSharedSession: %v", err)
	}
	_, err = redis.New(nil, sharedOpts("bad", "a", os))
	check("a session of another backend type", err, "Session")

	cc := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: []string{srv.Addr()}, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = cc.Close() })
	cb, err := redis.NewBackend(cc, redis.BackendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cb.Close() })
	cs, err := election.NewSharedSession(cb, election.SessionOptions{TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = redis.New(nil, sharedOpts("bad", "a", cs))
	check("a Redis Cluster client", err, "Session")
	ctx := ctxT(t, 10*time.Second)
	_, err = cb.NewLease(ctx, election.LeaseParams{TTL: time.Second})
	check("a lease on a Redis Cluster client", err, "Session")
	ring := goredis.NewRing(&goredis.RingOptions{Addrs: map[string]string{"a": srv.Addr()}})
	t.Cleanup(func() { _ = ring.Close() })
	rb, err := redis.NewBackend(ring, redis.BackendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rb.Close() })
	_, err = rb.NewLease(ctx, election.LeaseParams{TTL: time.Second})
	check("a lease on a Ring", err, "Session")

	_, err = b.NewLease(ctx, election.LeaseParams{})
	check("a lease without TTL", err, "TTL")
	l, err := b.NewLease(ctx, election.LeaseParams{TTL: time.Second})
	if err != nil {
		t.Fatalf("NewLease: %v", err)
	}
	p := election.SessionParams{Resource: "bad", ID: "a", TTL: time.Second}
	cl, err := l.Claim(p)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	if _, err := l.Claim(p); !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("a second claim of one resource: got %v, want ErrInvalidOptions", err)
	}
	if _, err := l.Claim(election.SessionParams{Resource: "", ID: "a"}); err == nil {
		t.Error("a claim without resource succeeded")
	}
	if err := cl.Close(ctx); err != nil {
		t.Fatalf("close claim: %v", err)
	}
	if _, err := l.Claim(p); err != nil {
		t.Errorf("a claim after the first was closed: %v", err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatalf("close lease: %v", err)
	}
	if err := l.Renew(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Errorf("Renew after Close: got %v, want ErrSessionLost", err)
	}
}

// TestLeaseCloseReleasesEveryKey closes a lease whose claims were not
// closed: every leader key held through it and the lease key are deleted,
// and the lease is gone for Renew and Acquire.
func TestLeaseCloseReleasesEveryKey(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	b, err := redis.NewBackend(client(t, srv.Addr()), redis.BackendOptions{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx := ctxT(t, 10*time.Second)
	l, err := b.NewLease(ctx, election.LeaseParams{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for i := range 3 {
		r := fmt.Sprintf("close-%d", i)
		keys = append(keys, leaderKeyOf(r))
		cl, err := l.Claim(election.SessionParams{Resource: r, ID: "a", TTL: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		acq, err := cl.Acquire(ctx)
		if err != nil || acq.Session != l.Info().ID || acq.Term == 0 {
			t.Fatalf("acquire %s: %+v, %v", r, acq, err)
		}
	}
	if err := l.Renew(ctx); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := admin.Exists(ctx, append(keys, l.Info().Fields["lease"])...).Val(); n != 0 {
		t.Errorf("%d of the leader keys and the lease key exist after Close", n)
	}
	if err := l.Renew(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Errorf("Renew after Close: %v, want ErrSessionLost", err)
	}

	// A lease whose key is gone acquires nothing.
	l2, err := b.NewLease(ctx, election.LeaseParams{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l2.Close(context.Background()) })
	admin.Del(ctx, l2.Info().Fields["lease"])
	cl, err := l2.Claim(election.SessionParams{Resource: "close-0", ID: "a", TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Acquire(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Errorf("Acquire on a lost lease: %v, want ErrSessionLost", err)
	}
	if n := admin.Exists(ctx, keys[0]).Val(); n != 0 {
		t.Errorf("Acquire on a lost lease created %s", keys[0])
	}
}

// TestACLSharedSession runs a shared session as a user with the least
// rights the package documents for one: the minimal ACL and the set and
// expiry commands of a lease. Its electors lead, keep their terms across
// renewals, and their keys expire with the lease key.
func TestACLSharedSession(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	aclUser(t, admin, "shared", append(minimalACL, "+exists", "+sadd", "+srem", "+smembers", "+pexpireat", "+pexpiretime")...)
	const ttl = time.Second
	_, s := newShared(t, client(t, srv.Addr(), asUser("shared")), ttl)
	rec := newSpans()
	resources := []string{"acl-0", "acl-1"}
	for _, r := range resources {
		startWith(t, nil, sharedOpts(r, "a", s), rec.handler(r, "a"))
	}
	rec.waitAll(t, resources, "a", 5*time.Second)
	time.Sleep(2 * ttl)
	rec.waitAll(t, resources, "a", 0)
	ctx := ctxT(t, 10*time.Second)
	// One transaction, so that no renewal runs between the reads.
	cmds, err := admin.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.Do(ctx, "PEXPIRETIME", s.Info().Fields["lease"])
		for _, r := range resources {
			p.Do(ctx, "PEXPIRETIME", leaderKeyOf(r))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	lease, _ := cmds[0].(*goredis.Cmd).Int64()
	for i, r := range resources {
		rec.mu.Lock()
		n := len(rec.terms[r])
		rec.mu.Unlock()
		if n != 1 {
			t.Errorf("%s had %d terms, want 1", r, n)
		}
		if at, _ := cmds[i+1].(*goredis.Cmd).Int64(); at != lease {
			t.Errorf("%s expires at %d, the lease key at %d", r, at, lease)
		}
	}
}
