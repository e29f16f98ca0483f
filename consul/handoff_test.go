package consul_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
)

// lines collects an elector's logs.
type lines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// handoffCandidate is a candidate with Handoff, renewing every 500 ms and
// logging at Debug level into logs, if not nil.
func handoffCandidate(t testing.TB, srv *testserver.ConsulServer, resource, id string, logs *lines) cand {
	o := candidate(t, srv, resource, id)
	o.Handoff = true
	o.LockDelay = consul.NoLockDelay
	o.RenewInterval = 500 * time.Millisecond
	if logs != nil {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return o
}

// registrations returns the registrations under the key of resource.
func registrations(t testing.TB, c *api.Client, resource string) api.KVPairs {
	t.Helper()
	pairs, _, err := c.KV().List(consul.DefaultKey(resource)+consul.CandidatesSuffix, &api.QueryOptions{RequireConsistent: true})
	if err != nil {
		t.Fatalf("list registrations: %v", err)
	}
	return pairs
}

// waitRegistered waits until n live registrations are under the key.
func waitRegistered(t testing.TB, c *api.Client, resource string, n int) api.KVPairs {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var live api.KVPairs
		for _, p := range registrations(t, c, resource) {
			if p.Session != "" {
				live = append(live, p)
			}
		}
		if len(live) == n {
			return live
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d live registrations, want %d", len(live), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHandoff checks a release with Handoff: the key goes, in one
// transaction, to the candidate that registered first, which leads with a
// higher term; candidates that stop delete their registrations.
func TestHandoff(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	logs := &lines{}
	a, evA := start(t, handoffCandidate(t, srv, "handoff", "a", logs))
	first := evA.wait(t, 10*time.Second, "a leads", leads)
	_, evB := start(t, handoffCandidate(t, srv, "handoff", "b", nil))
	waitRegistered(t, admin, "handoff", 1)
	c, evC := start(t, handoffCandidate(t, srv, "handoff", "c", nil))
	regs := waitRegistered(t, admin, "handoff", 2)
	if regs[0].CreateIndex > regs[1].CreateIndex {
		regs[0], regs[1] = regs[1], regs[0]
	}

	if err := a.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	next := evB.wait(t, 5*time.Second, "b leads", leads)
	if next.Session.ID != regs[0].Session {
		t.Errorf("b leads with session %s; the first registration is of %s", next.Session.ID, regs[0].Session)
	}
	if next.Term <= first.Term {
		t.Errorf("term after the handoff %d, before %d", next.Term, first.Term)
	}
	// a logs the handoff once its transaction returned, which may be after
	// b's handler ran.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "handed the key over"); {
		if time.Now().After(deadline) {
			t.Fatalf("a did not hand the key over; its logs:\n%s", logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if pair := leaderOf(t, admin, "handoff"); pair == nil || pair.Session != next.Session.ID {
		t.Errorf("key after the handoff: %+v", pair)
	}
	evC.wait(t, 5*time.Second, "c sees b", sees("b"))

	// c stops: its registration goes, and b's stays.
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range registrations(t, admin, "handoff") {
		if strings.HasSuffix(p.Key, regs[1].Session) {
			t.Errorf("c's registration is still there after Close: %+v", p)
		}
	}
}

// createSession creates a session with no checks and a lock-delay of 1 ms.
func createSession(t testing.TB, c *api.Client) string {
	t.Helper()
	id, _, err := c.Session().Create(&api.SessionEntry{TTL: "60s", LockDelay: time.Millisecond, Checks: []string{}}, nil)
	if err != nil {
		t.Fatalf("create session: %v", err)
	}
	return id
}

// destroySession destroys a session, as an operator would.
func destroySession(t testing.TB, c *api.Client, id string) {
	t.Helper()
	if _, err := c.Session().Destroy(id, nil); err != nil {
		t.Fatalf("destroy session %s: %v", id, err)
	}
}

// register writes a registration for session, as a candidate would.
func register(t testing.TB, c *api.Client, resource, session, leaderID string) {
	t.Helper()
	value := fmt.Sprintf(`{"format":"consul-leader/1","leader":%q,"lock_delay_ms":1}`, leaderID)
	key := consul.DefaultKey(resource) + consul.CandidatesSuffix + session
	if ok, _, err := c.KV().Acquire(&api.KVPair{Key: key, Value: []byte(value), Session: session}, nil); err != nil || !ok {
		t.Fatalf("register %s: %v, %v", session, ok, err)
	}
}

// TestHandoffToFrozenCandidate shows the price of Handoff: a registered
// candidate whose session lives but whose process does not act is handed
// the key, and nobody leads until its session ends; then a live candidate
// takes the key.
func TestHandoffToFrozenCandidate(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	a, evA := start(t, handoffCandidate(t, srv, "frozen", "a", nil))
	evA.wait(t, 10*time.Second, "a leads", leads)
	frozen := createSession(t, admin)
	register(t, admin, "frozen", frozen, "frozen")
	_, evB := start(t, handoffCandidate(t, srv, "frozen", "b", nil))
	waitRegistered(t, admin, "frozen", 2)

	// a stops, so that only b may take the key from the frozen candidate.
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	evB.wait(t, 5*time.Second, "b sees the frozen candidate lead", sees("frozen"))
	if pair := leaderOf(t, admin, "frozen"); pair == nil || pair.Session != frozen {
		t.Fatalf("key after the release: %+v, want it held by %s", pair, frozen)
	}
	destroySession(t, admin, frozen)
	evB.wait(t, 5*time.Second, "b leads once the frozen session ended", leads)
}

// TestHandoffSkipsEndedCandidates checks that a registration whose session
// ended is never handed the key, and that the leader deletes it.
func TestHandoffSkipsEndedCandidates(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	a, evA := start(t, handoffCandidate(t, srv, "ended", "a", nil))
	evA.wait(t, 10*time.Second, "a leads", leads)
	ended := createSession(t, admin)
	register(t, admin, "ended", ended, "ended")
	destroySession(t, admin, ended)
	// a deletes the ended session's registration at a renewal.
	deadline := time.Now().Add(5 * time.Second)
	for len(registrations(t, admin, "ended")) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("registrations of ended sessions stay: %+v", registrations(t, admin, "ended"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A fresh one is ended after the leader saw it, and skipped.
	ended = createSession(t, admin)
	register(t, admin, "ended", ended, "ended")
	_, evB := start(t, handoffCandidate(t, srv, "ended", "b", nil))
	waitRegistered(t, admin, "ended", 2)
	destroySession(t, admin, ended)
	waitRegistered(t, admin, "ended", 1)
	if err := a.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	evB.wait(t, 5*time.Second, "b leads", leads)
}

// TestHandoffToClosingCandidate checks that a candidate that stops right
// after it was handed the key, whether it learned it leads or not, releases
// the key rather than ending its session with it, which would make Consul
// apply the lock-delay.
func TestHandoffToClosingCandidate(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	holder := createSession(t, admin)
	key := consul.DefaultKey("closing")
	if ok, _, err := admin.KV().Acquire(&api.KVPair{Key: key, Session: holder}, nil); err != nil || !ok {
		t.Fatalf("acquire: %v, %v", ok, err)
	}
	o := handoffCandidate(t, srv, "closing", "b", nil)
	o.LockDelay = 30 * time.Second
	b, evB := start(t, o)
	evB.wait(t, 10*time.Second, "b sees the holder", func(ev event) bool { return !ev.IsLeader && ev.LeaderID == holder })
	reg := waitRegistered(t, admin, "closing", 1)[0]

	// Hand the key over to b as a leader would, with b's registered record.
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVUnlock, Key: key, Session: holder}},
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: key, Value: reg.Value, Flags: api.LockFlagValue, Session: reg.Session}},
	}
	if ok, resp, _, err := admin.Txn().Txn(ops, nil); err != nil || !ok {
		t.Fatalf("handoff: %v, %v, %+v", ok, err, resp)
	}
	// b stops at once: it may or may not have learned that it leads.
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	other := createSession(t, admin)
	if ok, _, err := admin.KV().Acquire(&api.KVPair{Key: key, Session: other}, nil); err != nil || !ok {
		t.Errorf("the key is refused after b stopped (lock-delay applied?): %v, %v", ok, err)
	}
	if regs := registrations(t, admin, "closing"); len(regs) != 0 {
		t.Errorf("registrations after b stopped: %+v", regs)
	}
}

// TestHandoffMixed runs electors with and without Handoff on one key: a
// leader with Handoff hands the key to a registered candidate, never to a
// follower without Handoff, which follows; with no candidate registered, a
// leader releases the key, and the follower without Handoff takes it.
func TestHandoffMixed(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	a, evA := start(t, handoffCandidate(t, srv, "mixed", "a", nil))
	evA.wait(t, 10*time.Second, "a leads", leads)
	plain := candidate(t, srv, "mixed", "p")
	plain.LockDelay = consul.NoLockDelay
	_, evP := start(t, plain)
	evP.wait(t, 10*time.Second, "p sees a", sees("a"))
	c, evC := start(t, handoffCandidate(t, srv, "mixed", "c", nil))
	waitRegistered(t, admin, "mixed", 1)

	if err := a.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	evC.wait(t, 5*time.Second, "c leads", leads)
	evP.wait(t, 5*time.Second, "p sees c", sees("c"))

	// a registers again; c, closed, hands the key over to it.
	waitRegistered(t, admin, "mixed", 2) // c's, kept while it leads, and a's
	if err := c.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	evA.wait(t, 5*time.Second, "a leads again", leads)
	evP.wait(t, 5*time.Second, "p sees a", sees("a"))

	// Nobody is registered: a, closed, releases, and p takes the key.
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	evP.wait(t, 5*time.Second, "p leads", leads)
	if regs := registrations(t, admin, "mixed"); len(regs) != 0 {
		t.Errorf("registrations left: %+v", regs)
	}
}

// TestHandoffToFrozenCheckBoundCandidate checks that with a check-bound
// session a frozen candidate costs about its check's TTL: its check is no
// longer passed, Consul invalidates the session, and a live candidate takes
// the key.
func TestHandoffToFrozenCheckBoundCandidate(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	mk := func(id string) cand {
		o := handoffCandidate(t, srv, "frozen-check", id, nil)
		o.CheckTTL, o.TTL, o.RenewInterval, o.LockDelay = 2*time.Second, 0, 0, 0
		return o
	}
	a, evA := start(t, mk("a"))
	evA.wait(t, 10*time.Second, "a leads", leads)

	// The frozen candidate: a session bound to a TTL check that nobody
	// passes after its registration. The check's TTL runs from there.
	check := &api.AgentCheckRegistration{ID: "frozen-check", Name: "frozen candidate"}
	check.TTL, check.Status = "5s", api.HealthPassing
	if err := admin.Agent().CheckRegister(check); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Agent().CheckDeregister(check.ID) })
	frozen, _, err := admin.Session().Create(&api.SessionEntry{TTL: "60s", LockDelay: time.Millisecond, Checks: []string{check.ID}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	register(t, admin, "frozen-check", frozen, "frozen")
	_, evB := start(t, mk("b"))
	waitRegistered(t, admin, "frozen-check", 2)

	// a stops, so that only b may take the key from the frozen candidate.
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	released := time.Now()
	evB.wait(t, 5*time.Second, "b sees the frozen candidate lead", sees("frozen"))
	evB.wait(t, 30*time.Second, "b leads once the frozen candidate's check failed", leads)
	if d := time.Since(released); d > 12*time.Second { // the session itself would last 60 s
		t.Errorf("b led %v after the release; want at most about the check's TTL of 5s", d)
	}
}
