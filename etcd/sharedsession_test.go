package etcd

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
)

// sharedTTL is the TTL of most shared sessions of these tests: short, for
// the tests that wait for it to pass.
const sharedTTL = 3 * time.Second

// group is one process's shared session and its electors, one per
// resource, all named id/resource in the TermLog.
type group struct {
	id  string
	b   *Backend
	ss  *election.SharedSession
	els map[string]*election.Elector
}

// startGroup starts a shared session on client and an elector of candidate
// id on it for each resource, recording their handler calls in log. The
// electors, the session and the backend are closed when t ends.
func startGroup(t testing.TB, client *clientv3.Client, id string, resources []string, log *conformance.TermLog) *group {
	t.Helper()
	return startGroupTTL(t, client, id, resources, log, sharedTTL)
}

// startGroupTTL is startGroup with a shared session of ttl.
func startGroupTTL(t testing.TB, client *clientv3.Client, id string, resources []string, log *conformance.TermLog, ttl time.Duration) *group {
	t.Helper()
	b := newBackend(t, client)
	ss, err := election.NewSharedSession(b, election.SessionOptions{TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := ss.Close(ctx); err != nil {
			t.Errorf("close shared session %s: %v", id, err)
		}
	})
	g := &group{id: id, b: b, ss: ss, els: map[string]*election.Elector{}}
	for _, r := range resources {
		el, err := New(client, Options{Options: election.Options{Resource: r, ID: id, Session: ss}})
		if err != nil {
			t.Fatalf("New %s/%s: %v", id, r, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := el.Close(ctx); err != nil {
				t.Errorf("close %s/%s: %v", id, r, err)
			}
		})
		if err := el.Start(context.Background(), log.Handler(id+"/"+r)); err != nil {
			t.Fatal(err)
		}
		g.els[r] = el
	}
	return g
}

func resourceNames(n int) []string {
	rs := make([]string, n)
	for i := range rs {
		rs[i] = fmt.Sprintf("shared-%03d", i)
	}
	return rs
}

// waitLeaders waits up to d for a leader call of candidate id for every
// resource made at or after since, and returns them by resource.
func waitLeaders(t testing.TB, log *conformance.TermLog, id string, resources []string, since time.Time, d time.Duration) map[string]conformance.TermCall {
	t.Helper()
	got := map[string]conformance.TermCall{}
	deadline := since.Add(d)
	for _, r := range resources {
		name := id + "/" + r
		c, ok := log.WaitFor(since, time.Until(deadline)+time.Since(since), func(c conformance.TermCall) bool {
			return c.ID == name && c.L.IsLeader && !c.Ended
		})
		if !ok {
			t.Fatalf("%s does not lead %s within %v; calls:\n%s", id, r, d, log.Since(since))
		}
		got[r] = c
	}
	return got
}

// leases returns the IDs, in hex, of the leases etcd has.
func leases(t testing.TB, client *clientv3.Client) []string {
	t.Helper()
	resp, err := client.Leases(testCtx(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, len(resp.Leases))
	for _, l := range resp.Leases {
		ids = append(ids, leaseID(int64(l.ID)))
	}
	sort.Strings(ids)
	return ids
}

// TestSharedSessionOneLease checks that 200 electors on one shared session
// lead their resources through one etcd lease: every term shows it, every
// leader key is bound to it, and etcd has no other lease. Their watches
// share one gRPC stream, and at rest the client sends nothing but the
// lease's keepalives.
func TestSharedSessionOneLease(t *testing.T) {
	srv := startEtcd(t)
	counter := newRPCCounter()
	client := newClient(t, srv.Endpoint(), counter.install)
	log := &conformance.TermLog{}
	rs := resourceNames(200)
	start := time.Now()
	// A TTL long enough that a busy machine does not lose the lease.
	g := startGroupTTL(t, client, "a", rs, log, 6*time.Second)
	terms := waitLeaders(t, log, "a", rs, start, 30*time.Second)
	t.Logf("200 resources led after %v", time.Since(start).Round(time.Millisecond))
	lease := g.ss.Info().ID
	if lease == "" {
		t.Fatal("the shared session has no lease")
	}
	for r, c := range terms {
		if c.L.Session.ID != lease || c.L.Session.Fields["lease"] != lease || c.L.Session.Fields["key"] != DefaultPrefix(r)+"/"+lease {
			t.Errorf("%s: term on session %+v, want lease %s", r, c.L.Session, lease)
		}
	}
	if got := leases(t, client); len(got) != 1 || got[0] != lease {
		t.Errorf("etcd has leases %v, want only %s", got, lease)
	}
	// Every leader watches its key: wait until the watches run.
	for last, lastAt := counter.snapshot(), time.Now(); time.Since(lastAt) < time.Second; {
		time.Sleep(100 * time.Millisecond)
		if now := counter.snapshot(); now["/etcdserverpb.Watch/Watch send"] != last["/etcdserverpb.Watch/Watch send"] || now.reads() != last.reads() {
			last, lastAt = now, time.Now()
		}
	}
	// One watch of the prefix root serves them all.
	if n := counter.snapshot()["/etcdserverpb.Watch/Watch send"]; n < 1 || n > 2 {
		t.Errorf("%d watch requests for %d leaders, want 1 watch of %s/", n, len(rs), DefaultPrefixRoot)
	}
	rest := counter.snapshot()
	window := 2 * g.ss.Options().RenewInterval
	time.Sleep(window)
	keepalives := 0
	for k, v := range counter.since(rest) {
		switch k {
		case "/etcdserverpb.Lease/LeaseKeepAlive open", "/etcdserverpb.Lease/LeaseKeepAlive send":
			keepalives += v
		default:
			t.Errorf("at rest for %v, the client sent %s %d times", window, k, v)
		}
	}
	if keepalives > 6 {
		t.Errorf("at rest for %v, the client sent %d keepalive messages, want at most 3 renewals", window, keepalives)
	}
	if n := counter.snapshot()["/etcdserverpb.Watch/Watch open"]; n != 1 {
		t.Errorf("%d watch streams opened, want 1 for every watch", n)
	}
	resp, err := client.Get(testCtx(t, 5*time.Second), DefaultPrefixRoot+"/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != len(rs) {
		t.Errorf("%d keys under %s/, want %d", len(resp.Kvs), DefaultPrefixRoot, len(rs))
	}
	for _, kv := range resp.Kvs {
		if leaseID(kv.Lease) != lease {
			t.Errorf("key %s bound to lease %x, want %s", kv.Key, kv.Lease, lease)
		}
	}
}

// TestSharedSessionLeaseRevoked revokes a shared session's lease from
// outside: every term on it ends promptly, the electors of another shared
// session lead every resource with higher terms, and once those are
// closed the first session's electors lead again, on a new lease.
func TestSharedSessionLeaseRevoked(t *testing.T) {
	srv := startEtcd(t)
	admin := newClient(t, srv.Endpoint())
	log := &conformance.TermLog{}
	rs := resourceNames(20)
	start := time.Now()
	a := startGroup(t, newClient(t, srv.Endpoint()), "a", rs, log)
	first := waitLeaders(t, log, "a", rs, start, 20*time.Second)
	old := a.ss.Info().ID
	bClient := newClient(t, srv.Endpoint())
	b := startGroup(t, bClient, "b", rs, log)
	// b's electors follow a's, with their keys queued behind a's.
	for _, r := range rs {
		if _, ok := log.WaitFor(start, 20*time.Second, func(c conformance.TermCall) bool {
			return c.ID == "b/"+r && !c.L.IsLeader && c.L.LeaderID == "a"
		}); !ok {
			t.Fatalf("b/%s was not told a leads; calls:\n%s", r, log.Since(start))
		}
	}

	revoked := time.Now()
	if _, err := admin.Revoke(testCtx(t, 5*time.Second), clientv3.LeaseID(mustLease(t, old))); err != nil {
		t.Fatal(err)
	}
	// The store frees every resource at once; a's electors learn it from
	// their watches a moment later, at the latest at the next renewal.
	bound := a.ss.Options().RenewInterval + time.Second
	var lastEnd time.Time
	for _, r := range rs {
		end, ok := log.WaitFor(revoked, bound, func(c conformance.TermCall) bool {
			return c.ID == "a/"+r && c.Ended && c.L.Term == first[r].L.Term
		})
		if !ok {
			t.Fatalf("a's term %d of %s did not end within %v of the revocation; calls:\n%s", first[r].L.Term, r, bound, log.Since(revoked))
		}
		if end.At.After(lastEnd) {
			lastEnd = end.At
		}
	}
	t.Logf("every term of the revoked lease ended within %v", lastEnd.Sub(revoked).Round(time.Millisecond))
	next := waitLeaders(t, log, "b", rs, revoked, 10*time.Second)
	for _, r := range rs {
		if next[r].L.Term <= first[r].L.Term {
			t.Errorf("%s: b's term %d is not above a's %d", r, next[r].L.Term, first[r].L.Term)
		}
		if next[r].L.Session.ID != b.ss.Info().ID {
			t.Errorf("%s: b leads on %s, not on its shared lease %s", r, next[r].L.Session.ID, b.ss.Info().ID)
		}
	}

	// a campaigns on a new lease meanwhile, and leads once b is gone.
	closed := time.Now()
	ctx := testCtx(t, 30*time.Second)
	if err := b.ss.Close(ctx); err != nil {
		t.Fatal(err)
	}
	again := waitLeaders(t, log, "a", rs, closed, 10*time.Second)
	renewed := a.ss.Info().ID
	if renewed == "" || renewed == old {
		t.Fatalf("a's shared session is on lease %q after the revocation of %s", renewed, old)
	}
	for _, r := range rs {
		if again[r].L.Session.ID != renewed || again[r].L.Term <= next[r].L.Term {
			t.Errorf("%s: a leads again on %s with term %d; want lease %s and a term above b's %d",
				r, again[r].L.Session.ID, again[r].L.Term, renewed, next[r].L.Term)
		}
	}
	if got := leases(t, admin); len(got) != 1 || got[0] != renewed {
		t.Errorf("etcd has leases %v, want only a's new lease %s", got, renewed)
	}
	log.CheckMonotonic(t)
}

// TestSharedSessionCutOff cuts a shared session's process off etcd: every
// term on it ends at the step-down deadline, before etcd expires the lease,
// so that another shared session leads a resource only after every term of
// the first ended.
func TestSharedSessionCutOff(t *testing.T) {
	srv := startEtcd(t)
	log := &conformance.TermLog{}
	rs := resourceNames(20)
	start := time.Now()
	p := testserver.NewProxy(t, srv.Endpoint())
	a := startGroup(t, newClient(t, p.Addr()), "a", rs, log)
	first := waitLeaders(t, log, "a", rs, start, 20*time.Second)
	startGroup(t, newClient(t, srv.Endpoint()), "b", rs, log)
	time.Sleep(time.Second) // b's electors queue

	cut := time.Now()
	p.Cut()
	next := waitLeaders(t, log, "b", rs, cut, 3*sharedTTL)
	var lastEnd time.Time
	for _, r := range rs {
		end, ok := log.WaitFor(cut, sharedTTL, func(c conformance.TermCall) bool {
			return c.ID == "a/"+r && c.Ended && c.L.Term == first[r].L.Term
		})
		if !ok {
			t.Fatalf("a's term of %s did not end within the TTL of the cut; calls:\n%s", r, log.Since(cut))
		}
		if end.At.After(lastEnd) {
			lastEnd = end.At
		}
	}
	firstB := time.Time{}
	for _, c := range next {
		if firstB.IsZero() || c.At.Before(firstB) {
			firstB = c.At
		}
	}
	t.Logf("cut: a's terms all ended %v after the cut, b's first began %v after it",
		lastEnd.Sub(cut).Round(time.Millisecond), firstB.Sub(cut).Round(time.Millisecond))
	if !lastEnd.Before(firstB) {
		t.Errorf("b's first term began at %s, before a's last term ended at %s:\n%s",
			firstB.Format("15:04:05.000"), lastEnd.Format("15:04:05.000"), log.Since(cut))
	}
	p.Heal()
	_ = a
}

// TestSharedSessionRelease checks that a Release of one elector on a
// shared session hands its resource over at once, and leaves the terms of
// the others as they are, on the same lease.
func TestSharedSessionRelease(t *testing.T) {
	srv := startEtcd(t)
	log := &conformance.TermLog{}
	rs := resourceNames(10)
	start := time.Now()
	a := startGroup(t, newClient(t, srv.Endpoint()), "a", rs, log)
	first := waitLeaders(t, log, "a", rs, start, 20*time.Second)
	lease := a.ss.Info().ID
	startGroup(t, newClient(t, srv.Endpoint()), "b", rs, log)
	time.Sleep(time.Second) // b's electors queue

	released := time.Now()
	if err := a.els[rs[3]].Release(testCtx(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// a's lease stays: without the deletion of a's key, b would never lead.
	c, ok := log.WaitFor(released, 2*time.Second, func(c conformance.TermCall) bool {
		return c.ID == "b/"+rs[3] && c.L.IsLeader && !c.Ended
	})
	if !ok {
		t.Fatalf("b does not lead %s within 2 s of a's Release; calls:\n%s", rs[3], log.Since(released))
	}
	t.Logf("b leads %s %v after a's Release", rs[3], c.At.Sub(released).Round(time.Millisecond))
	time.Sleep(sharedTTL) // renewals and watches go on
	for _, r := range rs {
		if r == rs[3] {
			continue
		}
		if c, ok := log.WaitFor(released, 0, func(c conformance.TermCall) bool {
			return (c.ID == "a/"+r && c.Ended) || (c.ID == "b/"+r && c.L.IsLeader)
		}); ok {
			t.Errorf("%s changed hands after the Release of %s: %+v", r, rs[3], c)
		}
		if first[r].L.Session.ID != lease {
			t.Errorf("%s led on %s, not %s", r, first[r].L.Session.ID, lease)
		}
	}
	if now := a.ss.Info().ID; now != lease {
		t.Errorf("a's lease is %s after the Release, was %s", now, lease)
	}
}

// TestLeaseClaims checks the Lease and its claims directly: one keepalive
// renews every claim, closing a claim deletes its key only, and closing the
// lease deletes the keys of the claims still open, then revokes it.
func TestLeaseClaims(t *testing.T) {
	srv := startEtcd(t)
	client := newClient(t, srv.Endpoint())
	b := newBackend(t, client)
	ctx := testCtx(t, 30*time.Second)
	l, err := b.NewLease(ctx, election.LeaseParams{TTL: MinTTL})
	if err != nil {
		t.Fatal(err)
	}
	id := l.Info().ID
	if info := l.Info(); info.Backend != BackendName || info.TTL != MinTTL || info.Fields["lease"] != id {
		t.Fatalf("Info = %+v", info)
	}
	claims := map[string]election.Claim{}
	for _, r := range []string{"x", "y", "z"} {
		c, err := l.Claim(params(r, "a"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Info().ID != id || c.Info().Fields["key"] != DefaultPrefix(r)+"/"+id {
			t.Fatalf("claim of %s: Info = %+v", r, c.Info())
		}
		acq, err := c.Acquire(ctx)
		if err != nil || acq.Session != id || acq.LeaderID != "a" {
			t.Fatalf("Acquire %s = %+v, %v; want held by lease %s", r, acq, err, id)
		}
		claims[r] = c
	}
	if _, err := l.Claim(params("x", "a")); !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("second claim of x = %v, want ErrInvalidOptions", err)
	}
	// Renewals keep every key beyond the TTL.
	for range 3 {
		time.Sleep(time.Second)
		if err := l.Renew(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := claims["x"].Close(ctx); err != nil {
		t.Fatal(err)
	}
	for r, want := range map[string]int64{"x": 0, "y": 1, "z": 1} {
		resp, err := client.Get(ctx, DefaultPrefix(r)+"/"+id)
		if err != nil || resp.Count != want {
			t.Errorf("key of %s after x's claim closed: %d keys, %v; want %d", r, resp.Count, err, want)
		}
	}
	// x may be claimed again once its claim is closed.
	if c, err := l.Claim(params("x", "a")); err != nil {
		t.Errorf("claim of x after its claim closed: %v", err)
	} else {
		claims["x"] = c
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := leases(t, client); len(got) != 0 {
		t.Errorf("leases after Close: %v", got)
	}
	if err := l.Renew(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Errorf("Renew after Close = %v, want ErrSessionLost", err)
	}
	if _, err := l.Claim(params("w", "a")); !errors.Is(err, election.ErrSessionLost) {
		t.Errorf("Claim after Close = %v, want ErrSessionLost", err)
	}
	for _, c := range claims {
		if err := c.Close(ctx); err != nil {
			t.Errorf("claim Close after the lease's: %v", err)
		}
	}
}

// TestSharedSessionBadInput checks the errors of bad input: TTLs etcd cannot
// grant, resources the backend cannot serve, and sessions of other
// backends or clients.
func TestSharedSessionBadInput(t *testing.T) {
	srv := startEtcd(t)
	client := newClient(t, srv.Endpoint())
	b := newBackend(t, client)
	ctx := testCtx(t, 10*time.Second)
	for _, ttl := range []time.Duration{1500 * time.Millisecond, time.Second, 0} {
		if _, err := b.NewLease(ctx, election.LeaseParams{TTL: ttl}); !errors.Is(err, election.ErrInvalidOptions) {
			t.Errorf("NewLease with TTL %v = %v, want an invalid option", ttl, err)
		}
	}
	if _, err := election.NewSharedSession(b, election.SessionOptions{TTL: 2500 * time.Millisecond}); !isOptionError(err, "TTL") {
		t.Errorf("NewSharedSession with TTL 2.5s = %v, want an OptionError on TTL", err)
	}
	pb, err := NewBackend(client, Options{Prefix: "custom/jobs", Options: election.Options{Resource: "jobs"}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := pb.NewLease(ctx, election.LeaseParams{TTL: MinTTL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	if _, err := l.Claim(params("other", "a")); !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("claim of a resource the backend has no prefix for = %v, want ErrInvalidOptions", err)
	}
	if _, err := l.Claim(params("", "a")); !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("claim of an empty resource = %v, want ErrInvalidOptions", err)
	}

	ss, err := election.NewSharedSession(b, election.SessionOptions{TTL: MinTTL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ss.Close(context.Background()) })
	mem, err := election.NewSharedSession(wrapped{b}, election.SessionOptions{TTL: MinTTL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mem.Close(context.Background()) })
	other := newClient(t, srv.Endpoint())
	for name, tc := range map[string]struct {
		client *clientv3.Client
		opts   Options
		field  string
	}{
		"wrapped backend":    {client, Options{Options: election.Options{Resource: "r", Session: mem}}, "Session"},
		"another client":     {other, Options{Options: election.Options{Resource: "r", Session: ss}}, "client"},
		"nil client":         {nil, Options{Options: election.Options{Resource: "r", Session: ss}}, ""},
		"another prefix":     {client, Options{Prefix: "mine/r", Options: election.Options{Resource: "r", Session: ss}}, "Prefix"},
		"another TTL":        {client, Options{Options: election.Options{Resource: "r", Session: ss, TTL: 3 * time.Second}}, "TTL"},
		"same prefix, given": {client, Options{Prefix: DefaultPrefix("r"), Options: election.Options{Resource: "r", Session: ss}}, ""},
	} {
		el, err := New(tc.client, tc.opts)
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: New = %v", name, err)
		case tc.field == "":
			if err := el.Close(ctx); err != nil {
				t.Errorf("%s: Close = %v", name, err)
			}
		case !isOptionError(err, tc.field):
			t.Errorf("%s: New = %v, want an OptionError on %s", name, err, tc.field)
		}
	}
	u, _ := url.Parse("etcd://" + srv.Endpoint())
	if _, err := OpenURL(ctx, u, election.Options{Resource: "r", Session: ss}); !isOptionError(err, "Session") {
		t.Errorf("OpenURL with a Session = %v, want an OptionError on Session", err)
	}
}

func isOptionError(err error, field string) bool {
	var oe *election.OptionError
	return errors.As(err, &oe) && oe.Field == field && errors.Is(err, election.ErrInvalidOptions)
}

// wrapped is another backend type on the same store.
type wrapped struct{ *Backend }
