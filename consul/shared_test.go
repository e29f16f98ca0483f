package consul_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// sharedOpts are the options of the shared sessions of these tests:
// Consul's minimum TTL, renewed every second.
var sharedOpts = election.SessionOptions{TTL: 10 * time.Second, RenewInterval: time.Second}

// TestSharedSessionManyResources checks that 200 resources on one shared
// session all lead through one Consul session: Consul lists exactly one,
// and every key is held by it.
//
// The test's client bounds no connections (it counts the renewals): 200
// acquisitions at once may pass Consul's default limit of 200 connections
// per client address, which the agent is given room above. A client the
// backend creates keeps within it (TestOpenedBackendWithinConnectionLimit).
func TestSharedSessionManyResources(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{HCL: "limits { http_max_conns_per_client = 1000 }"})
	admin := newClient(t, srv.Addr, "")
	p := newProcess(t, srv, "a", &conformance.TermLog{}, consul.Options{}, sharedOpts)
	const n = 200
	els := make([]*election.Elector, n)
	for i := range els {
		els[i] = p.elect(t, fmt.Sprintf("many-%03d", i))
	}
	waitAll(t, 60*time.Second, "electors leading", els, isLeader)

	id := p.ss.Info().ID
	if id == "" {
		t.Fatal("the shared session has no Consul session while its electors lead")
	}
	list := consulSessions(t, admin)
	if len(list) != 1 || list[0].ID != id {
		t.Fatalf("Consul lists %d sessions; want exactly the shared one, %s", len(list), id)
	}
	if list[0].Name != consul.DefaultSessionNamePrefix+consul.DefaultSharedSessionName {
		t.Errorf("session name = %q", list[0].Name)
	}
	for i, el := range els {
		s := el.State()
		if s.Session.ID != id {
			t.Errorf("elector %d leads on session %q, want %q", i, s.Session.ID, id)
		}
		if pair := leaderOf(t, admin, s.Resource); pair == nil || pair.Session != id {
			t.Errorf("key of %q = %+v, want held by %s", s.Resource, pair, id)
		}
	}
}

// TestSharedSessionRenewTraffic checks that a shared session sends one
// renewal per RenewInterval, whether one resource or forty are on it.
func TestSharedSessionRenewTraffic(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	const window = 6 * time.Second
	for _, n := range []int{1, 40} {
		t.Run(fmt.Sprintf("%d resources", n), func(t *testing.T) {
			p := newProcess(t, srv, "a", &conformance.TermLog{}, consul.Options{}, sharedOpts)
			els := make([]*election.Elector, n)
			for i := range els {
				els[i] = p.elect(t, fmt.Sprintf("traffic-%d-%d", n, i))
			}
			waitAll(t, 30*time.Second, "electors leading", els, isLeader)
			before := p.rt.renews.Load()
			time.Sleep(window)
			got := p.rt.renews.Load() - before
			want := int64(window / sharedOpts.RenewInterval)
			t.Logf("%d resources: %d session renewals in %v (RenewInterval %v)", n, got, window, sharedOpts.RenewInterval)
			if got < want-1 || got > want+1 {
				t.Errorf("%d session renewals in %v with %d resources; want %d±1, one per RenewInterval", got, window, n, want)
			}
		})
	}
}

// TestSharedSessionDestroyed checks that destroying the Consul session of
// a shared session from outside ends every term on it; that another
// process's shared session wins the resources only after every one of
// those terms ended; and that the first process's electors lead again
// later, on a new Consul session.
func TestSharedSessionDestroyed(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	o := consul.Options{LockDelay: 3 * time.Second}
	log := &conformance.TermLog{}
	p1 := newProcess(t, srv, "p1", log, o, sharedOpts)
	p2 := newProcess(t, srv, "p2", log, o, sharedOpts)
	const n = 20
	resources := make([]string, n)
	els1, els2 := make([]*election.Elector, n), make([]*election.Elector, n)
	for i := range resources {
		resources[i] = fmt.Sprintf("destroyed-%02d", i)
		els1[i] = p1.elect(t, resources[i])
	}
	waitAll(t, 30*time.Second, "p1 leading", els1, isLeader)
	for i, r := range resources {
		els2[i] = p2.elect(t, r)
	}
	waitAll(t, 30*time.Second, "p2 following p1", els2, func(el *election.Elector) bool { return el.State().LeaderID == "p1" })

	old := p1.ss.Info().ID
	// The first process may not create its next session until the second
	// won every resource.
	p1.rt.refuseCreate.Store(true)
	destroyed := time.Now()
	if _, err := admin.Session().Destroy(old, nil); err != nil {
		t.Fatalf("destroy %s: %v", old, err)
	}
	waitAll(t, 30*time.Second, "p2 leading", els2, isLeader)
	waitAll(t, 10*time.Second, "p1 not leading", els1, func(el *election.Elector) bool { return !el.IsLeader() })

	var lastEnd time.Time
	ended := 0
	calls := log.Calls()
	for _, c := range calls {
		if c.ID == "p1" && c.Ended && c.L.Session.ID == old {
			ended++
			if c.At.After(lastEnd) {
				lastEnd = c.At
			}
		}
	}
	if ended != n {
		t.Fatalf("%d terms on the destroyed session ended, want %d:\n%s", ended, n, log.Since(destroyed))
	}
	for _, c := range calls {
		if c.ID == "p2" && c.L.IsLeader && !c.Ended && !c.At.After(lastEnd) {
			t.Errorf("p2 began leading %q at %v, before the last term of p1's destroyed session ended at %v",
				c.L.Resource, c.At.Format(time.StampMicro), lastEnd.Format(time.StampMicro))
		}
	}
	t.Logf("every term ended %v after the destroy", lastEnd.Sub(destroyed))

	// The first process creates a new session and follows; once the
	// second one goes, it leads every resource again on that session.
	p1.rt.refuseCreate.Store(false)
	waitFor(t, 30*time.Second, "p1's new session", func() bool { id := p1.ss.Info().ID; return id != "" && id != old })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p2.ss.Close(ctx); err != nil {
		t.Fatalf("close p2's session: %v", err)
	}
	waitAll(t, 30*time.Second, "p1 leading again", els1, isLeader)
	fresh := p1.ss.Info().ID
	for _, el := range els1 {
		if id := el.State().Session.ID; id != fresh || id == old {
			t.Errorf("%q leads on session %q; want the new one %q (the destroyed one was %q)", el.State().Resource, id, fresh, old)
		}
	}
	log.CheckNoOverlap(t)
}

// TestSharedSessionReleaseOne checks that releasing one elector of a
// shared session hands its resource over at once, without the lock-delay
// of a Consul session that ends, and leaves the session and the other
// resources on it as they are.
func TestSharedSessionReleaseOne(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	o := consul.Options{LockDelay: 15 * time.Second}
	log := &conformance.TermLog{}
	p1 := newProcess(t, srv, "p1", log, o, sharedOpts)
	p2 := newProcess(t, srv, "p2", log, o, sharedOpts)
	const n = 5
	els1, els2 := make([]*election.Elector, n), make([]*election.Elector, n)
	for i := range els1 {
		els1[i] = p1.elect(t, fmt.Sprintf("release-%d", i))
	}
	waitAll(t, 30*time.Second, "p1 leading", els1, isLeader)
	for i := range els2 {
		els2[i] = p2.elect(t, fmt.Sprintf("release-%d", i))
	}
	waitAll(t, 30*time.Second, "p2 following p1", els2, func(el *election.Elector) bool { return el.State().LeaderID == "p1" })
	id1 := p1.ss.Info().ID
	terms := make([]uint64, n)
	for i, el := range els1 {
		terms[i] = el.State().Term
	}

	released := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := els1[0].Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	waitAll(t, 5*time.Second, "p2 leading the released resource", els2[:1], isLeader)
	t.Logf("handed over %v after Release (lock-delay %v)", time.Since(released), o.LockDelay)

	time.Sleep(2 * sharedOpts.RenewInterval) // renewals after the release
	if got := p1.ss.Info().ID; got != id1 {
		t.Errorf("p1's session = %q after Release, want %q unchanged", got, id1)
	}
	if e, _, err := admin.Session().Info(id1, nil); err != nil || e == nil {
		t.Errorf("p1's Consul session after Release: %v, %v; want it alive", e, err)
	}
	for i := 1; i < n; i++ {
		s := els1[i].State()
		if !s.IsLeader || s.Term != terms[i] || s.Session.ID != id1 {
			t.Errorf("%q after another's Release: leader %v, term %d (was %d), session %q", s.Resource, s.IsLeader, s.Term, terms[i], s.Session.ID)
		}
	}
	for _, c := range log.Calls() {
		if c.ID == "p1" && c.Ended && c.L.Resource != "release-0" {
			t.Errorf("the term of %q ended at a Release of another resource", c.L.Resource)
		}
	}
}

func waitFor(t testing.TB, d time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !ok(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, d)
		}
	}
}

// TestSharedSessionKeyTakenFromOutside checks that a key deleted from
// outside ends the term of its resource only: the shared session, and the
// terms of the other resources on it, go on.
func TestSharedSessionKeyTakenFromOutside(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	admin := newClient(t, srv.Addr, "")
	log := &conformance.TermLog{}
	p := newProcess(t, srv, "p", log, consul.Options{LockDelay: 15 * time.Second}, sharedOpts)
	const n = 4
	els := make([]*election.Elector, n)
	for i := range els {
		els[i] = p.elect(t, fmt.Sprintf("taken-%d", i))
	}
	waitAll(t, 30*time.Second, "electors leading", els, isLeader)
	id := p.ss.Info().ID
	terms := make([]uint64, n)
	for i, el := range els {
		terms[i] = el.State().Term
	}
	deleted := time.Now()
	if _, err := admin.KV().Delete(consul.DefaultKey("taken-0"), nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := log.WaitFor(deleted, 10*time.Second, func(c conformance.TermCall) bool { return c.Ended && c.L.Resource == "taken-0" }); !ok {
		t.Fatalf("the term of the deleted key did not end:\n%s", log.Since(deleted))
	}
	time.Sleep(3 * sharedOpts.RenewInterval) // renewals after the loss
	if got := p.ss.Info().ID; got != id {
		t.Errorf("session = %q after a key was deleted, want %q unchanged", got, id)
	}
	for i := 1; i < n; i++ {
		if s := els[i].State(); !s.IsLeader || s.Term != terms[i] || s.Session.ID != id {
			t.Errorf("%q after another key was deleted: leader %v, term %d (was %d), session %q", s.Resource, s.IsLeader, s.Term, terms[i], s.Session.ID)
		}
	}
	waitAll(t, 10*time.Second, "the deleted key's elector leading again", els[:1], isLeader)
}

// TestOpenedBackendWithinConnectionLimit checks that a backend opened from
// a URL bounds its connections as one made by NewBackend does: 150
// resources acquired at once on one shared session, against an agent that
// refuses a client address more than 40 concurrent connections, all lead
// without a single store error.
func TestOpenedBackendWithinConnectionLimit(t *testing.T) {
	t.Parallel()
	srv := testserver.StartConsul(t, testserver.ConsulOptions{HCL: "limits { http_max_conns_per_client = 40 }"})
	u := &url.URL{Scheme: consul.Scheme, Host: srv.Addr}
	b, err := consul.OpenBackend(context.Background(), u, election.Options{TTL: sharedOpts.TTL})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close the backend: %v", err)
		}
	})
	log := &conformance.TermLog{}
	p := processOn(t, b, "a", log, sharedOpts)
	const n = 150
	els := make([]*election.Elector, n)
	for i := range els {
		els[i] = p.elect(t, fmt.Sprintf("limit-%03d", i))
	}
	waitAll(t, 60*time.Second, "electors leading", els, isLeader)
	var failed []error
	for _, c := range log.Calls() {
		if c.L.Err != nil {
			failed = append(failed, c.L.Err)
		}
	}
	if len(failed) > 0 {
		t.Errorf("%d store errors while %d resources were acquired at once, the first: %v", len(failed), n, failed[0])
	}
}
