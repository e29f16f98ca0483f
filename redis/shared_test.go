package redis_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
)

// TestSharedSessionLeadsManyResources leads 200 resources on one shared
// session: every leader key holds the lease's token and is in the lease's
// set; every renewal extends the lease key and all of them together, to
// the same expiry, in one script call per RenewInterval; and at rest the
// electors send no other command.
func TestSharedSessionLeadsManyResources(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	calls := newLeaseCalls()
	c := client(t, srv.Addr())
	c.AddHook(calls)
	const ttl = time.Second
	_, s := newShared(t, c, ttl)
	rec := newSpans()
	var resources []string
	for i := range 200 {
		r := fmt.Sprintf("many-%03d", i)
		resources = append(resources, r)
		startWith(t, nil, sharedOpts(r, "a", s), rec.handler(r, "a"))
	}
	took := rec.waitAll(t, resources, "a", 10*time.Second)
	t.Logf("200 resources led after %v", took.Round(time.Millisecond))

	ctx := ctxT(t, 30*time.Second)
	info := s.Info()
	lk := info.Fields["lease"]
	if info.ID == "" || lk == "" {
		t.Fatalf("session info %+v: no ID or lease key", info)
	}
	members, err := admin.SMembers(ctx, lk).Result()
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]bool{}
	for _, m := range members {
		set[m] = true
	}
	for _, r := range resources {
		v, err := admin.Get(ctx, leaderKeyOf(r)).Result()
		if err != nil {
			t.Fatalf("GET %s: %v", leaderKeyOf(r), err)
		}
		if !strings.HasPrefix(v, info.ID+"\n") {
			t.Errorf("%s holds %q, not the lease's token %s", leaderKeyOf(r), v, info.ID)
		}
		if !set[leaderKeyOf(r)] {
			t.Errorf("%s is not in the lease's set %s", leaderKeyOf(r), lk)
		}
	}

	// Every leader key expires with the lease key, at the same millisecond
	// (PEXPIRETIME, Redis 7.0), whether it was last extended by its
	// acquisition or by a renewal.
	checkExpiries := func(when string) {
		t.Helper()
		cmds, err := admin.TxPipelined(ctx, func(p goredis.Pipeliner) error {
			p.Do(ctx, "PEXPIRETIME", lk)
			for _, r := range resources {
				p.Do(ctx, "PEXPIRETIME", leaderKeyOf(r))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		lease, _ := cmds[0].(*goredis.Cmd).Int64()
		if left := time.Until(time.UnixMilli(lease)); left <= 0 || left > ttl {
			t.Fatalf("%s: the lease key expires in %v", when, left)
		}
		for i, r := range resources {
			if at, _ := cmds[i+1].(*goredis.Cmd).Int64(); at != lease {
				t.Errorf("%s: %s expires at %d, %d ms after the lease key", when, leaderKeyOf(r), at, at-lease)
			}
		}
	}
	checkExpiries("after the acquisitions")

	// At rest: one lease call per RenewInterval, and nothing else, for
	// longer than a leader's blocking read waits (LeaderWait). Rest begins
	// once the leaders' first reads, after their subscriptions, are done.
	calls.quiet(t, 300*time.Millisecond, 10*time.Second)
	leases0, others0 := calls.snapshot()
	window := election.LeaderWait(election.Options{TTL: ttl}) + time.Second
	time.Sleep(window)
	leases1, others1 := calls.snapshot()
	interval := s.Options().RenewInterval
	n := leases1 - leases0
	t.Logf("in %v: %d lease calls (RenewInterval %v), other commands %v", window, n, interval, diff(others1, others0))
	if want := int(window / interval); n < want-2 || n > want+1 {
		t.Errorf("%d lease calls in %v, want about %d (one per RenewInterval)", n, window, want)
	}
	if d := diff(others1, others0); len(d) > 0 {
		t.Errorf("other commands at rest in %v: %v, want none", window, d)
	}
	checkExpiries("after the renewals")
	rec.mu.Lock()
	for _, r := range resources {
		if n := len(rec.terms[r]); n != 1 {
			t.Errorf("%s had %d terms, want 1", r, n)
		}
	}
	rec.mu.Unlock()
	rec.checkNoOverlap(t)
}

// TestSharedSessionLossEndsEveryTerm loses a shared session in two ways,
// with a second shared session (another candidate) following every
// resource: its lease key deleted from outside, then its connection cut
// until every key expired. Every term on it must end, the second session
// may lead a resource only after the first one's term of it ended, and
// after each loss every resource must have a leader again; the second
// session's Close releases every key it holds, and the first session leads
// them again.
func TestSharedSessionLossEndsEveryTerm(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	proxy := testserver.NewProxy(t, srv.Addr())
	const ttl = time.Second
	_, sa := newShared(t, client(t, proxy.Addr()), ttl)
	_, sb := newShared(t, client(t, srv.Addr()), ttl)
	rec := newSpans()
	var resources []string
	for i := range 20 {
		resources = append(resources, fmt.Sprintf("loss-%02d", i))
	}
	for _, r := range resources {
		startWith(t, nil, sharedOpts(r, "a", sa), rec.handler(r, "a"))
	}
	rec.waitAll(t, resources, "a", 5*time.Second)
	for _, r := range resources {
		startWith(t, nil, sharedOpts(r, "b", sb), rec.handler(r, "b"))
	}
	time.Sleep(ttl) // b follows every resource

	// The lease key deleted: a's next renewal finds it gone.
	ctx := ctxT(t, 30*time.Second)
	deleted := time.Now()
	if n, err := admin.Del(ctx, sa.Info().Fields["lease"]).Result(); err != nil || n != 1 {
		t.Fatalf("delete the lease key: %d, %v", n, err)
	}
	// The key was deleted after a renewal had been sent, and before the
	// next: a's step-down deadline, a TTL less its margin after that
	// renewal, comes within a TTL, but the next renewal comes first, and
	// its finding ends the terms.
	took := rec.waitEnded(t, "a", deleted, ttl)
	t.Logf("lease key deleted: every term of a ended within %v", took.Round(time.Millisecond))
	rec.checkEndedBy(t, "a", deleted, election.ErrSessionLost)
	waitLed(t, rec, resources, 5*time.Second)

	// The connection cut: a's renewals hang, its keys expire, b takes over.
	cut := time.Now()
	proxy.Cut()
	took = rec.waitEnded(t, "a", cut, ttl)
	t.Logf("connection cut: every term of a ended within %v", took.Round(time.Millisecond))
	took = rec.waitAll(t, resources, "b", 4*ttl)
	t.Logf("connection cut: b leads every resource after %v", took.Round(time.Millisecond))
	proxy.Heal()

	// b's session closed: it released every key it held, rather than
	// leaving them to expire, and a leads every resource again.
	bID := sb.Info().ID
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sb.Close(cctx); err != nil {
		t.Fatalf("close b's session: %v", err)
	}
	checkReleased(t, admin, resources, bID)
	took = rec.waitAll(t, resources, "a", 5*time.Second)
	t.Logf("b's session closed: a leads every resource again after %v", took.Round(time.Millisecond))
	rec.checkNoOverlap(t)
}

// checkReleased fails t if a leader key of the resources still holds the
// token of session id, read in one request: a session's Close, once it
// returned, released every key it held.
func checkReleased(t testing.TB, admin goredis.UniversalClient, resources []string, id string) {
	t.Helper()
	keys := make([]string, len(resources))
	for i, r := range resources {
		keys[i] = leaderKeyOf(r)
	}
	vals, err := admin.MGet(ctxT(t, 10*time.Second), keys...).Result()
	if err != nil {
		t.Fatalf("MGET the leader keys: %v", err)
	}
	for i, v := range vals {
		if s, ok := v.(string); ok && strings.HasPrefix(s, id+"\n") {
			t.Errorf("%s still holds %q after the Close of session %s: the session did not release it", keys[i], s, id)
		}
	}
}

// waitLed waits until every resource has a running term, of any
// candidate.
func waitLed(t testing.TB, rec *spans, resources []string, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(5 * time.Millisecond) {
		n := 0
		for _, l := range rec.leaders(resources) {
			if l != "" {
				n++
			}
		}
		if n == len(resources) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d of %d resources are led; terms:\n%s", d, n, len(resources), rec.dump())
		}
	}
}

// TestSharedSessionReleaseHandsOver releases one resource of a shared
// session: a follower on another shared session takes it over at once,
// well before the TTL; the key leaves the lease's set, and the session's
// other resources stay led by it.
func TestSharedSessionReleaseHandsOver(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	const ttl = 5 * time.Second
	_, sa := newShared(t, client(t, srv.Addr()), ttl)
	_, sb := newShared(t, client(t, srv.Addr()), ttl)
	rec := newSpans()
	resources := []string{"rel-0", "rel-1", "rel-2"}
	els := map[string]*election.Elector{}
	for _, r := range resources {
		els[r] = startWith(t, nil, sharedOpts(r, "a", sa), rec.handler(r, "a"))
	}
	rec.waitAll(t, resources, "a", 5*time.Second)
	startWith(t, nil, sharedOpts("rel-1", "b", sb), rec.handler("rel-1", "b"))
	time.Sleep(500 * time.Millisecond) // b follows

	ctx := ctxT(t, 10*time.Second)
	released := time.Now()
	if err := els["rel-1"].Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	took := rec.waitAll(t, []string{"rel-1"}, "b", time.Second)
	t.Logf("b leads rel-1 %v after the Release began", time.Since(released).Round(time.Millisecond))
	if took > ttl/5 {
		t.Errorf("handover took %v", took)
	}
	if ls := rec.leaders(resources); ls["rel-0"] != "a" || ls["rel-2"] != "a" {
		t.Errorf("leaders after the release: %v, want a for rel-0 and rel-2", ls)
	}
	members, err := admin.SMembers(ctx, sa.Info().Fields["lease"]).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if m == leaderKeyOf("rel-1") {
			t.Errorf("the released key is still in a's lease set: %v", members)
		}
	}
	rec.checkNoOverlap(t)
}

// TestSharedSessionKeyDeletedFromOutside deletes one leader key of a
// shared session from outside, on a server without keyspace notifications:
// the lease's next renewal finds it gone, and the term of that resource,
// and only that one, ends within about one RenewInterval; the elector then
// leads it again with a greater term.
func TestSharedSessionKeyDeletedFromOutside(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	const ttl = 3 * time.Second
	_, s := newShared(t, client(t, srv.Addr()), ttl)
	rec := newSpans()
	resources := []string{"out-0", "out-1", "out-2"}
	for _, r := range resources {
		startWith(t, nil, sharedOpts(r, "a", s), rec.handler(r, "a"))
	}
	rec.waitAll(t, resources, "a", 5*time.Second)
	time.Sleep(time.Second) // the leaders' watches are at rest
	ctx := ctxT(t, 10*time.Second)
	deleted := time.Now()
	if n, err := admin.Del(ctx, leaderKeyOf("out-1")).Result(); err != nil || n != 1 {
		t.Fatalf("delete out-1's key: %d, %v", n, err)
	}
	interval := s.Options().RenewInterval
	took := rec.waitEnded(t, "a", deleted, interval+ttl/5, "out-1")
	t.Logf("the term of out-1 ended %v after its key was deleted (RenewInterval %v)", took.Round(time.Millisecond), interval)
	rec.waitAll(t, resources, "a", 2*time.Second)
	rec.mu.Lock()
	for _, r := range []string{"out-0", "out-2"} {
		if n := len(rec.terms[r]); n != 1 {
			t.Errorf("%s had %d terms, want 1: only out-1's term ends", r, n)
		}
	}
	rec.mu.Unlock()
	rec.checkNoOverlap(t)
}

// TestSharedSessionLeaderGoroutines leads 100 resources on one shared
// session, with handlers that wait for the end of their terms: at rest,
// each leader holds its handler's goroutine and no other (its watch of
// its record is a function of the backend's subscription, not a goroutine
// waiting in Watch); the session, the backend and the client hold a few
// more in all.
func TestSharedSessionLeaderGoroutines(t *testing.T) {
	srv := startRedis(t, srvOpts())
	c := client(t, srv.Addr())
	if err := c.Ping(ctxT(t, 5*time.Second)).Err(); err != nil {
		t.Fatal(err)
	}
	const n = 100
	base := runtime.NumGoroutine()
	_, s := newShared(t, c, 5*time.Second)
	rec := newSpans()
	resources := make([]string, n)
	for i := range resources {
		resources[i] = fmt.Sprintf("g-%03d", i)
		startWith(t, nil, sharedOpts(resources[i], "a", s), rec.handler(resources[i], "a"))
	}
	rec.waitAll(t, resources, "a", 10*time.Second)
	// The session's renewals, the subscription's receive loop, the client's
	// connections: a few in all.
	const others = 10
	var g int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if g = runtime.NumGoroutine() - base; g <= n+others || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%d leaders on one shared session: %d goroutines, %.2f each", n, g, float64(g)/n)
	if g > n+others {
		t.Errorf("%d leaders on one shared session hold %d goroutines; want at most 1 each (the handler's) and %d in all", n, g, others)
	}
}
