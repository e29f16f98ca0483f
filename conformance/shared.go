package conformance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// sharedResources is how many resources one shared session leads in the
// tests of shared sessions that check every term on it together.
const sharedResources = 50

// shared is one candidate's shared session under test: one connection to
// the store, one store session, and an elector per resource on it, all with
// the candidate's ID.
type shared struct {
	id   string
	ss   *election.SharedSession
	link Link
	els  map[string]*candidate // by resource
}

// newShared opens a shared session for candidate id, closed when the test
// ends (after its electors). It skips the test on a store that cannot share
// sessions.
func (s *suite) newShared(id string) *shared {
	s.t.Helper()
	st, ok := s.store.(SessionStore)
	if !ok {
		s.t.Skipf("the conformance store of %s does not implement SessionStore", s.c.Name)
	}
	ss, link, err := st.NewSharedSession(s.t, s.sessionOptions(id))
	if oe := (*election.OptionError)(nil); errors.As(err, &oe) && oe.Field == "backend" {
		s.t.Skipf("%s cannot share sessions yet: %v", s.c.Name, err)
	}
	if err != nil {
		s.t.Fatalf("NewSharedSession %s: %v", id, err)
	}
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.closeBound(s.options(s.resource, id)))
		defer cancel()
		if err := ss.Close(ctx); err != nil {
			s.t.Errorf("Close of the shared session of %s: %v", id, err)
		}
	})
	return &shared{id: id, ss: ss, link: link, els: map[string]*candidate{}}
}

func (s *suite) sessionOptions(id string) election.SessionOptions {
	return election.SessionOptions{TTL: s.c.TTL, Name: "conformance-" + id}
}

// sharedOptions returns the options of sh's elector for resource: its TTL
// and RenewInterval are the session's.
func (s *suite) sharedOptions(sh *shared, resource string) election.Options {
	return election.Options{
		Resource: resource,
		ID:       sh.id,
		Value:    []byte("value-of-" + sh.id),
		Session:  sh.ss,
	}
}

// onShared creates and starts sh's elector for resource, closed when the
// test ends; fail, if set, decides what its leader calls return.
func (s *suite) onShared(sh *shared, resource string, fail func(election.Leadership) error) *candidate {
	s.t.Helper()
	opts := s.sharedOptions(sh, resource)
	el, err := election.New(sh.ss.Backend(), opts)
	if err != nil {
		s.t.Fatalf("elector of %s for %q on its shared session: %v", sh.id, resource, err)
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &candidate{id: sh.id, el: el, link: sh.link, stop: stop}
	s.t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), s.closeBound(opts))
		defer cancel()
		if err := el.Close(cctx); err != nil {
			s.t.Errorf("Close %s's elector for %q: %v", sh.id, resource, err)
		}
		stop()
	})
	if err := el.Start(ctx, s.rec.handler(sh.id, fail)); err != nil {
		s.t.Fatalf("Start %s's elector for %q: %v", sh.id, resource, err)
	}
	sh.els[resource] = c
	return c
}

// sharedResourceNames returns n resources of the test.
func (s *suite) sharedResourceNames(n int) []string {
	rs := make([]string, n)
	for i := range rs {
		rs[i] = fmt.Sprintf("%s-%02d", s.resource, i)
	}
	return rs
}

// leadAll starts a's electors for every resource of rs and waits until
// each leads, then starts b's (if b is not nil) and waits until each was
// told that a leads. It returns a's leader calls by resource.
func (s *suite) leadAll(a, b *shared, rs []string) map[string]leaderAt {
	s.t.Helper()
	for _, r := range rs {
		s.onShared(a, r, nil)
	}
	led := s.waitAllLeadBy(a.id, rs, 0, s.c.Slack+s.defaults().RequestTimeout)
	if b != nil {
		for _, r := range rs {
			s.onShared(b, r, nil)
		}
		for _, r := range rs {
			s.waitSeenOn(b.id, r, a.id, led[r].l.Term, s.c.Slack)
		}
	}
	return led
}

// waitAllLeadBy waits until candidate id has begun a leader call of every
// resource of rs at or after position from, and returns the first of each.
func (s *suite) waitAllLeadBy(id string, rs []string, from int, within time.Duration) map[string]leaderAt {
	s.t.Helper()
	got := map[string]leaderAt{}
	ok := s.rec.waitFor(within, func() bool {
		for _, r := range rs {
			if _, ok := got[r]; ok {
				continue
			}
			if c, pos, ok := s.rec.firstStartBy(r, id, from); ok {
				got[r] = leaderAt{c, pos}
			}
		}
		return len(got) == len(rs)
	})
	if !ok {
		var missing []string
		for _, r := range rs {
			if _, ok := got[r]; !ok {
				missing = append(missing, r)
			}
		}
		s.t.Fatalf("%s did not lead %d of %d resources within %v: %q", id, len(missing), len(rs), within, missing)
	}
	return got
}

// waitSeenOn waits until the elector of candidate id for resource was told
// that leader leads with term (any term if zero).
func (s *suite) waitSeenOn(id, resource, leader string, term uint64, within time.Duration) election.Leadership {
	s.t.Helper()
	var l election.Leadership
	if !s.rec.waitFor(within, func() bool {
		l = s.rec.seenOn(id, resource)
		return l.LeaderID == leader && l.IsLeader == (id == leader) && (term == 0 || l.Term == term)
	}) {
		s.t.Fatalf("%s's elector for %q was not told within %v that %s leads (term %d); last told: %+v", id, resource, within, leader, term, l)
	}
	return l
}

// waitEndedOn waits for the end of the context of id's term of resource.
func (s *suite) waitEndedOn(id, resource string, term uint64, within time.Duration) (call, ended) {
	s.t.Helper()
	var (
		c call
		e ended
	)
	if !s.rec.waitFor(within, func() bool {
		var ok bool
		c, e.pos, ok = s.rec.ctxEndOn(id, resource, term)
		e.at = c.at
		return ok
	}) {
		s.t.Fatalf("the context of %s's term %d of %q did not end within %v", id, term, resource, within)
	}
	return c, e
}

// checkHeld fails the test unless id still leads every resource of rs in
// the term of held.
func (s *suite) checkHeld(id string, rs []string, held map[string]leaderAt, why string) {
	s.t.Helper()
	for _, r := range rs {
		if cur, term, ok := s.rec.leader(r); !ok || cur != id || term != held[r].l.Term {
			s.t.Errorf("%s: %q is led by %q term %d (leading: %v); want %s to keep term %d", why, r, cur, term, ok, id, held[r].l.Term)
		}
	}
}

func sameSession(a, b election.SessionInfo) bool {
	return a.Backend == b.Backend && a.ID == b.ID && a.TTL == b.TTL
}

// testSharedMany: the electors of many resources on one shared session all
// lead through one store session, and a second shared session leads none of
// them while the first lives.
func testSharedMany(s *suite) {
	a, b := s.newShared("ma"), s.newShared("mb")
	rs := s.sharedResourceNames(sharedResources)
	led := s.leadAll(a, b, rs)
	first := led[rs[0]].l.Session
	if first.ID == "" || first.Backend == "" || first.TTL != s.c.TTL {
		s.t.Errorf("leader Session = %+v; want a backend, an ID and TTL %v", first, s.c.TTL)
	}
	for _, r := range rs {
		if l := led[r].l; !sameSession(l.Session, first) {
			s.t.Errorf("%q is led through session %+v, %q through %+v; want one store session", r, l.Session, rs[0], first)
		}
	}
	if info := a.ss.Info(); !sameSession(info, first) {
		s.t.Errorf("SharedSession.Info() = %+v; its electors lead through %+v", info, first)
	}
	other := b.ss.Info()
	if other.ID == "" || other.ID == first.ID {
		s.t.Errorf("the second shared session's ID is %q; the first's is %q", other.ID, first.ID)
	}
	for _, r := range rs {
		if l := s.rec.seenOn(b.id, r); l.Session.ID != other.ID {
			s.t.Errorf("%s's elector for %q was told its session is %q; the session's Info says %q", b.id, r, l.Session.ID, other.ID)
		}
	}
	// One renewal a RenewInterval keeps every term: hold for a TTL.
	time.Sleep(s.c.TTL)
	s.checkHeld(a.id, rs, led, "a TTL with no fault")
}

// testSharedLost: a shared session cut off from the store past its TTL
// ends every term on it before another candidate leads any of them; then
// the other candidate leads them all, and the first, back, campaigns again
// on a new store session.
func testSharedLost(s *suite) {
	a, b := s.newShared("la"), s.newShared("lb")
	rs := s.sharedResourceNames(sharedResources)
	led := s.leadAll(a, b, rs)
	oldID := led[rs[0]].l.Session.ID
	cutAt := time.Now()
	cutMark := s.rec.mark()
	a.link.Cut()
	next := s.waitAllLeadBy(b.id, rs, cutMark, s.failover())
	stepDown := s.c.TTL - election.StepDownMargin(s.c.TTL)
	lastEnd, firstStart := -1, -1
	var lastEndAt, firstStartAt time.Time
	for _, r := range rs {
		_, end := s.waitEndedOn(a.id, r, led[r].l.Term, s.c.Slack)
		if end.pos > lastEnd {
			lastEnd, lastEndAt = end.pos, end.at
		}
		if n := next[r]; firstStart < 0 || n.pos < firstStart {
			firstStart, firstStartAt = n.pos, n.at
		}
		if !end.before(next[r]) {
			s.t.Errorf("%q: %s's term %d ended at %v, not before %s's term %d began at %v", r, a.id, led[r].l.Term, end.at, b.id, next[r].l.Term, next[r].at)
		}
		if d := end.at.Sub(cutAt); d > stepDown+s.c.Slack {
			s.t.Errorf("%q: %s stepped down %v after the cut; its deadline is %v after its last renewal", r, a.id, d, stepDown)
		}
		if next[r].l.Term <= led[r].l.Term {
			s.t.Errorf("%q: term %d after the loss, want > %d", r, next[r].l.Term, led[r].l.Term)
		}
	}
	if lastEnd > firstStart {
		s.t.Errorf("a term of %s's lost session ended at %v, after %s began a term at %v: the terms of a session end together", a.id, lastEndAt, b.id, firstStartAt)
	}
	s.t.Logf("session cut: every term of %s ended within %v, %s led all %d resources %v after the cut",
		a.id, lastEndAt.Sub(cutAt), b.id, len(rs), firstStartAt.Sub(cutAt))
	// Healed, the session makes a new store session, which the electors
	// campaign on: they follow. Its failures while cut off may have backed
	// its retries off to MaxRetryDelay (± RetryJitter).
	a.link.Heal()
	backedOff := time.Duration(float64(election.MaxRetryDelay(s.defaults())) * (1 + election.RetryJitter))
	within := s.defaults().WaitTime + backedOff + s.c.Slack
	var newID string
	for _, r := range rs {
		l := s.waitSeenOn(a.id, r, b.id, next[r].l.Term, within)
		if l.Session.ID == "" || l.Session.ID == oldID {
			s.t.Errorf("%q: after the heal %s follows on session %q; want a new one, not %q", r, a.id, l.Session.ID, oldID)
		}
		if newID == "" {
			newID = l.Session.ID
		} else if l.Session.ID != newID {
			s.t.Errorf("%q: %s follows on session %q, %q on %q; want one store session", r, a.id, l.Session.ID, rs[0], newID)
		}
	}
	if info := a.ss.Info(); info.ID != newID {
		s.t.Errorf("SharedSession.Info() after the heal = %+v; its electors follow on %q", info, newID)
	}
}

// testSharedIndependent: the resources of a shared session are led
// independently: a Release, or a failing handler, of one elector hands that
// resource over at once, and leaves the other terms as they are.
func testSharedIndependent(s *suite) {
	a, b := s.newShared("ia"), s.newShared("ib")
	rs := s.sharedResourceNames(3)
	led := s.leadAll(a, b, rs)
	mark := s.rec.mark()
	ctx, cancel := context.WithTimeout(context.Background(), s.c.Slack)
	defer cancel()
	if err := a.els[rs[0]].el.Release(ctx); err != nil {
		s.t.Fatalf("Release: %v", err)
	}
	next := s.waitAllLeadBy(b.id, rs[:1], mark, s.c.Slack)[rs[0]]
	if _, end := s.waitEndedOn(a.id, rs[0], led[rs[0]].l.Term, s.c.Slack); !end.before(next) {
		s.t.Errorf("released term ended at %v, not before the new leader began at %v", end.at, next.at)
	}
	s.checkHeld(a.id, rs[1:], led, "after the Release of "+rs[0])

	// A handler that fails gives up its own term only.
	fs := []string{s.resource + "-fail", s.resource + "-keep"}
	s.onShared(a, fs[0], func(election.Leadership) error { return errors.New("boom") })
	s.onShared(a, fs[1], nil)
	failed := s.waitAllLeadBy(a.id, fs, mark, s.c.Slack+s.defaults().RequestTimeout)
	s.waitEndedOn(a.id, fs[0], failed[fs[0]].l.Term, s.c.Slack)
	s.onShared(b, fs[0], nil)
	s.waitAllLeadBy(b.id, fs[:1], mark, s.c.Slack+maxRetryWait(s.defaults()))
	// Renewals go on for the others: hold for a TTL.
	time.Sleep(s.c.TTL)
	s.checkHeld(a.id, rs[1:], led, "after a failing handler of "+fs[0])
	s.checkHeld(a.id, fs[1:], failed, "after a failing handler of "+fs[0])
}

// maxRetryWait is the longest wait of an elector before it campaigns again
// after failures: MaxRetryDelay and RetryJitter.
func maxRetryWait(o election.Options) time.Duration {
	return time.Duration(float64(election.MaxRetryDelay(o)) * (1 + election.RetryJitter))
}

// testSharedRemoved: when the store session of a shared session is removed
// from outside, every term on it ends, and the other candidate leads.
func testSharedRemoved(s *suite) {
	a, b := s.newShared("ra"), s.newShared("rb")
	rs := s.sharedResourceNames(5)
	led := s.leadAll(a, b, rs)
	oldID := led[rs[0]].l.Session.ID
	for _, r := range rs {
		// The store frees every record at once; the old leader learns it
		// a moment later (see testRemoved).
		s.rec.takenFromOutside(r)
	}
	removed := time.Now()
	mark := s.rec.mark()
	s.store.Remove(s.t, rs[0], RemoveSession)
	bound := s.c.Slack + s.defaults().RenewInterval
	for _, r := range rs {
		s.waitEndedOn(a.id, r, led[r].l.Term, bound)
	}
	s.t.Logf("every term stepped down within %v after the session was removed", time.Since(removed))
	next := s.waitAllLeadBy(b.id, rs, mark, s.failover())
	for _, r := range rs {
		if next[r].l.Term <= led[r].l.Term {
			s.t.Errorf("%q: term %d after the removal, want > %d", r, next[r].l.Term, led[r].l.Term)
		}
	}
	// The first candidate follows, and campaigns on a new store session
	// once it learns of the loss: from a request that finds the session
	// gone, at its next renewal at the latest. (A follower's notification
	// may still name the removed session: a store may refuse a lock on a
	// held key without telling that the session is gone.)
	for _, r := range rs {
		s.waitSeenOn(a.id, r, b.id, next[r].l.Term, s.defaults().WaitTime+maxRetryWait(s.defaults())+s.c.Slack)
	}
	within := s.defaults().RenewInterval + maxRetryWait(s.defaults()) + s.c.Slack
	if !poll(within, func() bool { id := a.ss.Info().ID; return id != "" && id != oldID }) {
		s.t.Errorf("%s's shared session is %+v %v after its store session %q was removed; want a new one", a.id, a.ss.Info(), within, oldID)
	}
}

// testSharedBadInput: electors on a shared session are refused for a
// session of another backend value, for a resource already campaigned for
// on the session, for durations not the session's, and once the session
// is closed.
func testSharedBadInput(s *suite) {
	a, b := s.newShared("ba"), s.newShared("bb")
	r := s.resource
	if _, err := election.New(a.ss.Backend(), s.sharedOptions(b, r)); !errors.Is(err, election.ErrInvalidOptions) {
		s.t.Errorf("elector on %s's backend with %s's session: %v; want ErrInvalidOptions", a.id, b.id, err)
	}
	first, err := election.New(a.ss.Backend(), s.sharedOptions(a, r))
	if err != nil {
		s.t.Fatalf("elector on a shared session: %v", err)
	}
	_, err = election.New(a.ss.Backend(), s.sharedOptions(a, r))
	if oe := (*election.OptionError)(nil); !errors.As(err, &oe) || oe.Field != "Resource" {
		s.t.Errorf("second elector for %q on one session: %v; want an *OptionError for Resource", r, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.c.Slack)
	defer cancel()
	if err := first.Close(ctx); err != nil {
		s.t.Fatalf("Close: %v", err)
	}
	again, err := election.New(a.ss.Backend(), s.sharedOptions(a, r))
	if err != nil {
		s.t.Fatalf("elector for %q after the first was closed: %v", r, err)
	}
	for _, edit := range []struct {
		field string
		f     func(o *election.Options)
	}{
		{"TTL", func(o *election.Options) { o.TTL = s.c.TTL * 2 }},
		{"RenewInterval", func(o *election.Options) { o.RenewInterval = s.c.TTL / 7 }},
	} {
		o := s.sharedOptions(a, r+"-"+edit.field)
		edit.f(&o)
		if _, err := election.New(a.ss.Backend(), o); !errors.Is(err, election.ErrInvalidOptions) || !containsField(err, edit.field) {
			s.t.Errorf("elector with a %s other than its session's: %v; want an *OptionError for %s", edit.field, err, edit.field)
		}
	}
	st := s.store.(SessionStore)
	bad := s.sessionOptions("bad")
	bad.RenewInterval = bad.TTL
	if _, _, err := st.NewSharedSession(s.t, bad); !containsField(err, "RenewInterval") {
		s.t.Errorf("NewSharedSession with RenewInterval = TTL: %v; want an *OptionError for RenewInterval", err)
	}

	// Closed, the session refuses new electors, and its electors' Start.
	if err := a.ss.Close(ctx); err != nil {
		s.t.Fatalf("Close of a session whose electors never started: %v", err)
	}
	if err := again.Start(ctx, s.rec.handler(a.id, nil)); !errors.Is(err, election.ErrSessionClosed) {
		s.t.Errorf("Start of an elector after its session was closed: %v; want ErrSessionClosed", err)
	}
	if err := again.Close(ctx); err != nil {
		s.t.Errorf("Close of an elector of a closed session: %v", err)
	}
	if _, err := election.New(a.ss.Backend(), s.sharedOptions(a, r+"-late")); !errors.Is(err, election.ErrSessionClosed) || !errors.Is(err, election.ErrInvalidOptions) {
		s.t.Errorf("elector on a closed session: %v; want ErrInvalidOptions and ErrSessionClosed", err)
	}
	if err := a.ss.Close(ctx); err != nil {
		s.t.Errorf("second Close of a session: %v", err)
	}
}

// containsField reports whether err is an *OptionError for field.
func containsField(err error, field string) bool {
	oe := (*election.OptionError)(nil)
	return errors.As(err, &oe) && oe.Field == field
}

// testSharedClose: Close of a shared session ends every term on it with
// ErrSessionClosed before it returns, releases every resource at once, tells
// the electors, and leaves no goroutine once they are closed.
func testSharedClose(s *suite) {
	s.checkNoLeaks()
	a, b := s.newShared("ca"), s.newShared("cb")
	rs := s.sharedResourceNames(5)
	led := s.leadAll(a, b, rs)
	mark := s.rec.mark()
	closed := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), s.c.Slack)
	defer cancel()
	if err := a.ss.Close(ctx); err != nil {
		s.t.Fatalf("Close of the shared session: %v", err)
	}
	for _, r := range rs {
		c, _, ok := s.rec.ctxEndOn(a.id, r, led[r].l.Term)
		switch {
		case !ok:
			s.t.Errorf("%q: Close returned before the context of %s's term ended", r, a.id)
		case !errors.Is(c.cause, election.ErrSessionClosed):
			s.t.Errorf("%q: %s's term ended with cause %v; want ErrSessionClosed", r, a.id, c.cause)
		}
	}
	if info := a.ss.Info(); info.ID != "" {
		s.t.Errorf("Info() after Close = %+v; want none", info)
	}
	// Released: no TTL to wait.
	next := s.waitAllLeadBy(b.id, rs, mark, s.c.Slack)
	var last time.Time
	for _, r := range rs {
		last = maxTime(last, next[r].at)
	}
	s.t.Logf("%s led all %d resources %v after the Close", b.id, len(rs), last.Sub(closed))
	for _, r := range rs {
		if !s.rec.waitFor(s.c.Slack, func() bool { return errors.Is(s.rec.seenOn(a.id, r).Err, election.ErrSessionClosed) }) {
			s.t.Errorf("%q: %s's handler was not told ErrSessionClosed; last told %+v", r, a.id, s.rec.seenOn(a.id, r))
		}
	}
	if err := a.ss.Close(ctx); err != nil {
		s.t.Errorf("second Close: %v", err)
	}
	for _, r := range rs {
		if err := a.els[r].el.Close(ctx); err != nil {
			s.t.Errorf("Close of %s's elector for %q after its session's Close: %v", a.id, r, err)
		}
	}
}

// poll reports whether cond holds within d, checking it every millisecond.
func poll(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
