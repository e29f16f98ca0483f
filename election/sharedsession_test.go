//go:build go1.25

package election_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// The engine on a shared session, tested in fake time on the memory store.

// termLog records the terms of the electors of a shared session, by
// resource.
type termLog struct {
	mu     sync.Mutex
	leads  map[string][]election.Leadership // every leader call
	ends   map[string][]time.Time           // the end of each leader call's context
	causes map[string][]error               // its cause
	last   map[string]election.Leadership   // the last call
}

func newTermLog() *termLog {
	return &termLog{
		leads:  map[string][]election.Leadership{},
		ends:   map[string][]time.Time{},
		causes: map[string][]error{},
		last:   map[string]election.Leadership{},
	}
}

func (g *termLog) handler(ctx context.Context, l election.Leadership) error {
	g.mu.Lock()
	g.last[l.Resource] = l
	if l.IsLeader {
		g.leads[l.Resource] = append(g.leads[l.Resource], l)
	}
	g.mu.Unlock()
	if !l.IsLeader {
		return nil
	}
	<-ctx.Done()
	g.mu.Lock()
	g.ends[l.Resource] = append(g.ends[l.Resource], time.Now())
	g.causes[l.Resource] = append(g.causes[l.Resource], context.Cause(ctx))
	g.mu.Unlock()
	return nil
}

// endsOf returns when each term of resource ended, and why.
func (g *termLog) endsOf(resource string) ([]time.Time, []error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]time.Time(nil), g.ends[resource]...), append([]error(nil), g.causes[resource]...)
}

// terms returns how many terms resource had, and how many ended.
func (g *termLog) terms(resource string) (led, ended int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.leads[resource]), len(g.ends[resource])
}

func (g *termLog) lastLead(resource string) election.Leadership {
	g.mu.Lock()
	defer g.mu.Unlock()
	ls := g.leads[resource]
	if len(ls) == 0 {
		return election.Leadership{}
	}
	return ls[len(ls)-1]
}

func (g *termLog) lastCall(resource string) election.Leadership {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.last[resource]
}

func resources(n int) []string {
	rs := make([]string, n)
	for i := range rs {
		rs[i] = fmt.Sprintf("r%03d", i)
	}
	return rs
}

// newShared returns a shared session on the store's connection name,
// closed when t ends.
func newShared(t *testing.T, store *memory.Store, name string, o election.SessionOptions) *election.SharedSession {
	t.Helper()
	s, err := election.NewSharedSession(store.Connect(name), o)
	if err != nil {
		t.Fatalf("NewSharedSession: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close of the session: %v", err)
		}
	})
	return s
}

// startOn starts an elector of candidate id for each resource on s, closed
// when t ends, and returns them by resource.
func startOn(t *testing.T, s *election.SharedSession, id string, rs []string, h election.Handler) map[string]*election.Elector {
	t.Helper()
	els := map[string]*election.Elector{}
	for _, r := range rs {
		el, err := election.New(s.Backend(), election.Options{Resource: r, ID: id, Session: s})
		if err != nil {
			t.Fatalf("New %s: %v", r, err)
		}
		if err := el.Start(context.Background(), h); err != nil {
			t.Fatalf("Start %s: %v", r, err)
		}
		t.Cleanup(func() {
			if err := el.Close(context.Background()); err != nil {
				t.Errorf("Close %s: %v", r, err)
			}
		})
		els[r] = el
	}
	return els
}

// TestSharedStepDownDeadline: with the renewals of a shared session blocked,
// every term on it ends at once, at the start of the last successful
// renewal + TTL - StepDownMargin(TTL), before the store frees any of its
// resources (at + TTL); once the store is back, a new store session is
// created and leads them all again.
func TestSharedStepDownDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		ttl := 15 * time.Second
		s := newShared(t, store, "p", election.FixedSessionRenewals(election.SessionOptions{TTL: ttl}))
		g := newTermLog()
		rs := resources(20)
		start := time.Now()
		startOn(t, s, "a", rs, g.handler)
		synctest.Wait()
		old := s.Info()
		for _, r := range rs {
			if l := g.lastLead(r); l.Term == 0 || l.Session.ID != old.ID || l.Session.TTL != ttl {
				t.Fatalf("%s: leader call %+v; want a term on the session %+v", r, l, old)
			}
		}
		// Renewals happen every TTL/3 = 5 s; cut just after the one at 10 s.
		time.Sleep(10*time.Second + time.Millisecond)
		store.Cut("p")
		lastRenewal := start.Add(10 * time.Second)
		want := lastRenewal.Add(ttl - election.StepDownMargin(ttl))
		time.Sleep(time.Until(want) - time.Nanosecond)
		synctest.Wait()
		for _, r := range rs {
			if ends, _ := g.endsOf(r); len(ends) != 0 {
				t.Errorf("%s: term ended before the step-down deadline, at +%v", r, ends[0].Sub(start))
			}
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		for _, r := range rs {
			ends, causes := g.endsOf(r)
			if len(ends) != 1 || !ends[0].Equal(want) {
				t.Errorf("%s: %d terms ended (%v); want one, at +%v (last renewal + 13.5 s)", r, len(ends), ends, want.Sub(start))
			} else if !errors.Is(causes[0], election.ErrLeaseExpired) {
				t.Errorf("%s: the term ended with %v; want ErrLeaseExpired", r, causes[0])
			}
			// The store keeps the session until last renewal + TTL.
			if id, _ := store.Leader(r); id != "a" {
				t.Errorf("%s: the store freed the leadership at the step-down; leader %q", r, id)
			}
		}
		if info := s.Info(); info.ID != "" {
			t.Errorf("Info() after the session was lost = %+v; want none", info)
		}
		time.Sleep(time.Until(lastRenewal.Add(ttl)))
		synctest.Wait()
		for _, r := range rs {
			if id, _ := store.Leader(r); id != "" {
				t.Errorf("%s: the store still shows %q a TTL after the last renewal", r, id)
			}
		}
		store.Heal("p")
		// The session backs off while cut (at most MaxRetryDelay ± 20 %),
		// then creates a new store session, on which every elector leads.
		o := election.Options{TTL: ttl}
		time.Sleep(time.Duration(float64(election.MaxRetryDelay(o))*(1+election.RetryJitter)) + time.Second)
		synctest.Wait()
		now := s.Info()
		if now.ID == "" || now.ID == old.ID {
			t.Fatalf("after the store's return the session is %+v; want a new one, not %q", now, old.ID)
		}
		for _, r := range rs {
			if l := g.lastLead(r); l.Session.ID != now.ID || !l.IsLeader {
				t.Errorf("%s: last leader call %+v; want a term on the new session %q", r, l, now.ID)
			}
		}
	})
}

// TestSharedLostLeaseEndsEveryTerm: a store session ended from outside ends
// every term on it at once, and the electors lead again on a new one.
func TestSharedLostLeaseEndsEveryTerm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		ttl := 15 * time.Second
		s := newShared(t, store, "p", election.FixedSessionRenewals(election.SessionOptions{TTL: ttl}))
		g := newTermLog()
		rs := resources(10)
		startOn(t, s, "a", rs, g.handler)
		synctest.Wait()
		old := s.Info()
		time.Sleep(time.Second)
		lost := time.Now()
		if !store.Expire(rs[3]) {
			t.Fatal("no leader to expire")
		}
		synctest.Wait()
		for _, r := range rs {
			if ends, _ := g.endsOf(r); len(ends) != 1 || !ends[0].Equal(lost) {
				t.Errorf("%s: %d terms ended (%v); want one, when the session was lost", r, len(ends), ends)
			}
		}
		// The first elector to find the session gone ends it for all; the
		// session makes a new store session after RetryInterval ± 20 %,
		// as it does for a store that keeps losing them.
		var back time.Duration
		for !allOn(g, rs, s) {
			if back > ttl {
				t.Fatalf("no new session for every elector within a TTL: session %+v", s.Info())
			}
			time.Sleep(100 * time.Millisecond)
			back += 100 * time.Millisecond
			synctest.Wait()
		}
		t.Logf("every elector leads on a new session %v after the loss", back)
		if s.Info().ID == old.ID {
			t.Errorf("the electors lead on the lost session %q again", old.ID)
		}
		if limit := time.Duration(float64(election.DefaultRetryInterval)*(1+election.RetryJitter)) + 100*time.Millisecond; back > limit {
			t.Errorf("the electors led again %v after the loss; want at most RetryInterval + 20 %% (%v), not a wait for the next renewal", back, limit)
		}
	})
}

// allOn reports whether every resource of rs is led on s's current store
// session.
func allOn(g *termLog, rs []string, s *election.SharedSession) bool {
	id := s.Info().ID
	for _, r := range rs {
		if led, ended := g.terms(r); id == "" || led != ended+1 || g.lastLead(r).Session.ID != id {
			return false
		}
	}
	return true
}

// TestSharedSessionClose: Close ends every term with ErrSessionClosed before
// it returns, frees every resource at once, tells the handlers, and leaves
// no goroutine once the electors are closed.
func TestSharedSessionClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		s, err := election.NewSharedSession(store.Connect("p"), election.SessionOptions{TTL: 15 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		before := liveGoroutines()
		g := newTermLog()
		rs := resources(10)
		els := map[string]*election.Elector{}
		for _, r := range rs {
			el, err := election.New(s.Backend(), election.Options{Resource: r, ID: "a", Session: s})
			if err != nil {
				t.Fatal(err)
			}
			if err := el.Start(context.Background(), g.handler); err != nil {
				t.Fatal(err)
			}
			els[r] = el
		}
		late, err := election.New(s.Backend(), election.Options{Resource: "late", ID: "a", Session: s})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		closed := time.Now()
		if err := s.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		for _, r := range rs {
			if _, causes := g.endsOf(r); len(causes) != 1 || !errors.Is(causes[0], election.ErrSessionClosed) {
				t.Errorf("%s: when Close returned, %d terms had ended (causes %v); want one, with ErrSessionClosed", r, len(causes), causes)
			}
			if id, _ := store.Leader(r); id != "" {
				t.Errorf("%s: the store shows %q after Close; want it released", r, id)
			}
		}
		if !time.Now().Equal(closed) {
			t.Errorf("Close took %v of fake time", time.Since(closed))
		}
		synctest.Wait()
		for _, r := range rs {
			if l := g.lastCall(r); !errors.Is(l.Err, election.ErrSessionClosed) {
				t.Errorf("%s: the handler was last told %+v; want ErrSessionClosed", r, l)
			}
		}
		if info := s.Info(); info.ID != "" {
			t.Errorf("Info() after Close = %+v", info)
		}
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := late.Start(context.Background(), g.handler); !errors.Is(err, election.ErrSessionClosed) {
			t.Errorf("Start after the session's Close: %v; want ErrSessionClosed", err)
		}
		if _, err := election.New(s.Backend(), election.Options{Resource: "later", Session: s}); !errors.Is(err, election.ErrSessionClosed) || !errors.Is(err, election.ErrInvalidOptions) {
			t.Errorf("New after the session's Close: %v; want ErrInvalidOptions and ErrSessionClosed", err)
		}
		for _, el := range append([]*election.Elector{late}, mapValues(els)...) {
			if err := el.Close(context.Background()); err != nil {
				t.Errorf("Close of an elector: %v", err)
			}
		}
		synctest.Wait()
		if n := liveGoroutines(); n > before {
			t.Errorf("%d goroutines after every Close, %d before the electors started", n, before)
		}
	})
}

func mapValues(m map[string]*election.Elector) []*election.Elector {
	var vs []*election.Elector
	for _, v := range m {
		vs = append(vs, v)
	}
	return vs
}

// plainBackend hides every method of a backend but Backend's: it cannot
// share its sessions.
type plainBackend struct{ election.Backend }

// TestSharedSessionBadInput: what NewSharedSession and New refuse.
func TestSharedSessionBadInput(t *testing.T) {
	store := memory.NewStore()
	conn := store.Connect("p")
	isField := func(err error, field string) bool {
		oe := (*election.OptionError)(nil)
		return errors.As(err, &oe) && oe.Field == field
	}
	if _, err := election.NewSharedSession(nil, election.SessionOptions{}); !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("NewSharedSession(nil): %v; want ErrInvalidOptions", err)
	}
	if _, err := election.NewSharedSession(plainBackend{conn}, election.SessionOptions{}); !isField(err, "backend") {
		t.Errorf("NewSharedSession on a backend that cannot share: %v; want an *OptionError for backend", err)
	}
	for field, o := range map[string]election.SessionOptions{
		"TTL":           {TTL: -time.Second},
		"RenewInterval": {TTL: time.Second, RenewInterval: time.Second},
	} {
		if _, err := election.NewSharedSession(conn, o); !isField(err, field) {
			t.Errorf("NewSharedSession(%+v): %v; want an *OptionError for %s", o, err, field)
		}
	}
	s, err := election.NewSharedSession(conn, election.SessionOptions{TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Options(); got.TTL != 10*time.Second || got.RenewInterval != 10*time.Second/3 {
		t.Errorf("Options() = %+v; want TTL 10 s and its defaults", got)
	}
	opts := func(resource string) election.Options {
		return election.Options{Resource: resource, ID: "a", Session: s}
	}
	if _, err := election.New(store.Connect("p"), opts("r")); !isField(err, "Session") {
		t.Errorf("elector on another backend value than its session's: %v; want an *OptionError for Session", err)
	}
	if _, err := election.New(plainBackend{conn}, opts("r")); !isField(err, "Session") {
		t.Errorf("elector on a wrapper of its session's backend: %v; want an *OptionError for Session", err)
	}
	first, err := election.New(conn, opts("r"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := election.New(conn, opts("r")); !isField(err, "Resource") {
		t.Errorf("second elector for one resource on one session: %v; want an *OptionError for Resource", err)
	}
	o := opts("r2")
	o.TTL = 20 * time.Second
	if _, err := election.New(conn, o); !isField(err, "TTL") {
		t.Errorf("elector with a TTL other than its session's: %v; want an *OptionError for TTL", err)
	}
	o = opts("r2")
	o.RenewInterval = time.Second
	if _, err := election.New(conn, o); !isField(err, "RenewInterval") {
		t.Errorf("elector with a RenewInterval other than its session's: %v; want an *OptionError for RenewInterval", err)
	}
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	again, err := election.New(conn, opts("r"))
	if err != nil {
		t.Fatalf("elector for a resource whose elector on the session was closed: %v", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatalf("Close of a session never started: %v", err)
	}
	if err := again.Start(context.Background(), func(context.Context, election.Leadership) error { return nil }); !errors.Is(err, election.ErrSessionClosed) {
		t.Errorf("Start after the session's Close: %v; want ErrSessionClosed", err)
	}
	if err := again.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// TestSharedSessionGoroutines: an elector on a shared session holds at most
// two goroutines while it leads, one while it follows a stable leader, and
// the session a few of its own, however many electors it has.
func TestSharedSessionGoroutines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 100
		const perSession = 4 // the session's loop and renewals, with room to spare
		store := memory.NewStore()
		ttl := 15 * time.Second
		a := newShared(t, store, "a", election.SessionOptions{TTL: ttl})
		b := newShared(t, store, "b", election.SessionOptions{TTL: ttl})
		rs := resources(n)
		g := newTermLog()
		base := liveGoroutines()
		startOn(t, a, "a", rs, g.handler)
		synctest.Wait()
		time.Sleep(ttl) // through a few renewals
		synctest.Wait()
		leading := liveGoroutines() - base
		startOn(t, b, "b", rs, g.handler)
		synctest.Wait()
		time.Sleep(ttl)
		synctest.Wait()
		following := liveGoroutines() - base - leading
		// Leaders whose handler returned at once: their campaigns wait for
		// the end of the term without a goroutine.
		c := newShared(t, store, "c", election.SessionOptions{TTL: ttl})
		quick := make([]string, n)
		for i := range quick {
			quick[i] = fmt.Sprintf("q%d", i)
		}
		var led atomic.Int64
		startOn(t, c, "c", quick, func(_ context.Context, l election.Leadership) error {
			if l.IsLeader {
				led.Add(1)
			}
			return nil
		})
		synctest.Wait()
		time.Sleep(ttl)
		synctest.Wait()
		returned := liveGoroutines() - base - leading - following
		t.Logf("%d electors leading on one session: %d goroutines; %d following on another: %d; %d leading with handlers returned: %d",
			n, leading, n, following, n, returned)
		if led.Load() != n {
			t.Fatalf("%d of %d electors led on session c; want all", led.Load(), n)
		}
		if returned > n+perSession {
			t.Errorf("%d electors leading on a shared session, their handlers returned, hold %d goroutines; want at most 1 each (the watch of the record) and %d for the session", n, returned, perSession)
		}
		for _, r := range rs {
			if led, ended := g.terms(r); led != 1 || ended != 0 || g.lastLead(r).LeaderID != "a" {
				t.Fatalf("%s: %d terms, %d ended, last by %q; want a's one term", r, led, ended, g.lastLead(r).LeaderID)
			}
		}
		if leading > 2*n+perSession {
			t.Errorf("%d electors leading on a shared session hold %d goroutines; want at most 2 each and %d for the session", n, leading, perSession)
		}
		if following > n+perSession {
			t.Errorf("%d electors following on a shared session hold %d goroutines; want at most 1 each and %d for the session", n, following, perSession)
		}
	})
}
