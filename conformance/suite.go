package conformance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/consul-leader/consul-leader/election"
)

// Run runs the conformance suite against the backend c describes. Each test
// uses resources of its own, so Parallel may run them at once on one server.
func Run(t *testing.T, c Config) {
	c = c.withDefaults()
	tests := []struct {
		name     string
		f        func(s *suite)
		parallel bool
	}{
		{"CloseReleasesAndLeaksNothing", testClose, false},
		{"SingleCandidateLeads", testSingle, true},
		{"FiveContendersOneLeader", testFive, true},
		{"ReleaseHandsOver", testRelease, true},
		{"NotificationHandler", testNotificationHandler, true},
		{"CrashFailover", testCrash, true},
		{"PartitionedLeaderStepsDown", testPartition, true},
		{"LateRepliesStepDownInTime", testLateReplies, true},
		{"SessionRemoved", func(s *suite) { testRemoved(s, RemoveSession) }, true},
		{"RecordRemoved", func(s *suite) { testRemoved(s, RemoveRecord) }, true},
		{"IndependentResources", testIndependent, true},
		{"CancelStartContext", testCancel, true},
		{"HandlerErrorGivesUp", testHandlerError, true},
		{"InvalidOptions", testInvalidOptions, true},
		{"LeaderAgreesWithHandlers", testLeaderAgrees, true},
		{"TermsOnlyGrow", testChurn, true},
		{"ResourceNamesKeptByteForByte", testNames, true},
		{"SharedSessionClose", testSharedClose, false},
		{"SharedManyResourcesOneSession", testSharedMany, true},
		{"SharedLostSessionEndsEveryTerm", testSharedLost, true},
		{"SharedIndependentResources", testSharedIndependent, true},
		{"SharedSessionRemoved", testSharedRemoved, true},
		{"SharedBadInput", testSharedBadInput, true},
		{"SharedRecordWatch", testRecordWatch, true},
		{"ObservedStepDown", testObservedStepDown, true},
		{"ObservedSessionRemoved", func(s *suite) { testObservedRemoved(s, RemoveSession) }, true},
		{"ObservedRecordRemoved", func(s *suite) { testObservedRemoved(s, RemoveRecord) }, true},
		{"ObservedOverrunUnhealthy", testObservedOverrun, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c.Parallel && tc.parallel {
				t.Parallel()
			}
			c.Wrap(t, func(t *testing.T) {
				s := &suite{t: t, c: c, rec: newRecorder(t), resource: resourceName(t)}
				s.store = c.Open(t)
				t.Cleanup(func() {
					if t.Failed() {
						t.Logf("handler calls of %s:\n%s", c.Name, s.rec.dump())
					}
				})
				tc.f(s)
			})
		})
	}
}

type suite struct {
	t        *testing.T
	c        Config
	store    Store
	rec      *recorder
	resource string
}

type candidate struct {
	id   string
	el   *election.Elector
	link Link
	stop context.CancelFunc
}

func resourceName(t *testing.T) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	name := t.Name()
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	return "conformance/" + name + "-" + hex.EncodeToString(b[:])
}

// options returns the suite's options for candidate id of resource.
func (s *suite) options(resource, id string) election.Options {
	return election.Options{
		Resource: resource,
		ID:       id,
		Value:    []byte("value-of-" + id),
		TTL:      s.c.TTL,
	}
}

// candidate creates and starts a candidate; fail, if set, decides what its
// leader calls return.
func (s *suite) candidate(resource, id string, fail func(election.Leadership) error) *candidate {
	return s.candidateWith(s.options(resource, id), s.rec.handler(id, fail))
}

func (s *suite) candidateWith(opts election.Options, h election.Handler) *candidate {
	s.t.Helper()
	c := s.newCandidate(opts)
	ctx, stop := context.WithCancel(context.Background())
	c.stop = stop
	if err := c.el.Start(ctx, h); err != nil {
		s.t.Fatalf("Start %s: %v", c.id, err)
	}
	return c
}

// newCandidate creates an unstarted candidate that the test closes at its end.
func (s *suite) newCandidate(opts election.Options) *candidate {
	s.t.Helper()
	el, link, err := s.store.NewCandidate(s.t, opts)
	if err != nil {
		s.t.Fatalf("NewCandidate %s: %v", opts.ID, err)
	}
	c := &candidate{id: opts.ID, el: el, link: link, stop: func() {}}
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.closeBound(opts))
		defer cancel()
		if err := el.Close(ctx); err != nil {
			s.t.Errorf("Close %s: %v", c.id, err)
		}
		c.stop()
	})
	return c
}

func (s *suite) closeBound(opts election.Options) time.Duration {
	o := opts.WithDefaults()
	return 2*o.RequestTimeout + s.c.Slack
}

func (s *suite) defaults() election.Options { return s.options(s.resource, "x").WithDefaults() }

// failover is the bound for a new leader after the old one stopped renewing.
func (s *suite) failover() time.Duration {
	return s.c.ExpiryBound + s.defaults().RetryInterval + s.c.Slack
}

// leaderCall is a leader call of the handler and its position among the
// recorded calls.
type leaderAt struct {
	call
	pos int
}

// waitLeader waits for a leader call of resource, by a candidate other than
// except, recorded at or after position from (see recorder.mark).
func (s *suite) waitLeader(resource, except string, from int, within time.Duration) leaderAt {
	s.t.Helper()
	var got leaderAt
	ok := s.rec.waitFor(within, func() bool {
		var found bool
		got.call, got.pos, found = s.rec.firstStart(resource, except, from)
		return found
	})
	if !ok {
		s.t.Fatalf("no leader of %q (other than %q) within %v", resource, except, within)
	}
	return got
}

// waitSeen waits until candidate id was told that leader leads.
func (s *suite) waitSeen(id, leader string, within time.Duration) election.Leadership {
	s.t.Helper()
	return s.waitSeenTerm(id, leader, 0, within)
}

// waitSeenTerm waits until candidate id was told that leader leads with term
// (any term if zero). A follower may be told of intermediate states first
// (a migrating candidate is seen on the old store before it holds the new
// one); what counts is that it learns the leader's term.
func (s *suite) waitSeenTerm(id, leader string, term uint64, within time.Duration) election.Leadership {
	s.t.Helper()
	var l election.Leadership
	if !s.rec.waitFor(within, func() bool {
		l = s.rec.seen(id)
		return l.LeaderID == leader && l.IsLeader == (id == leader) && (term == 0 || l.Term == term)
	}) {
		s.t.Fatalf("%s was not told within %v that %s leads; last told: %+v", id, within, leader, s.rec.seen(id))
	}
	return l
}

// ended is the end of a leader call's context and its position among the
// recorded calls.
type ended struct {
	at  time.Time
	pos int
}

// before reports whether the context ended before leader call l started.
func (e ended) before(l leaderAt) bool { return e.pos < l.pos }

// waitEnded waits for the end of the context of id's term.
func (s *suite) waitEnded(id string, term uint64, within time.Duration) ended {
	s.t.Helper()
	var e ended
	if !s.rec.waitFor(within, func() bool {
		var ok bool
		e.at, e.pos, ok = s.rec.ctxEnd(id, term)
		return ok
	}) {
		s.t.Fatalf("the context of %s's term %d did not end within %v", id, term, within)
	}
	return e
}

func (s *suite) byID(cs []*candidate, id string) *candidate {
	for _, c := range cs {
		if c.id == id {
			return c
		}
	}
	s.t.Fatalf("no candidate %q", id)
	return nil
}

func (s *suite) start(n int, prefix string) []*candidate {
	cs := make([]*candidate, n)
	for i := range cs {
		cs[i] = s.candidate(s.resource, prefix+string(rune('a'+i)), nil)
	}
	return cs
}

func testSingle(s *suite) {
	s.candidate(s.resource, "solo", nil)
	c := s.waitLeader(s.resource, "", 0, s.c.Slack)
	l := c.l
	if c.id != "solo" || !l.IsLeader || l.LeaderID != "solo" || l.Term == 0 {
		s.t.Fatalf("leader call: id %s, %+v; want solo leading with a term > 0", c.id, l)
	}
	if string(l.Value) != "value-of-solo" {
		s.t.Errorf("leader Value = %q, want %q", l.Value, "value-of-solo")
	}
	if l.Session.Backend == "" || l.Session.ID == "" || l.Session.TTL <= 0 {
		s.t.Errorf("leader Session = %+v; want backend, ID and TTL", l.Session)
	}
	if l.Resource != s.resource {
		s.t.Errorf("Resource = %q, want %q", l.Resource, s.resource)
	}
}

func testFive(s *suite) {
	cs := s.start(5, "c")
	first := s.waitLeader(s.resource, "", 0, s.c.Slack)
	for _, c := range cs {
		l := s.waitSeenTerm(c.id, first.id, first.l.Term, s.c.Slack)
		if l.Term != first.l.Term || string(l.Value) != "value-of-"+first.id {
			s.t.Errorf("%s was told term %d value %q; leader has term %d value %q", c.id, l.Term, l.Value, first.l.Term, "value-of-"+first.id)
		}
	}
	// Leadership is stable while nothing happens: hold for a TTL.
	time.Sleep(s.c.TTL)
	id, term, ok := s.rec.leader(s.resource)
	if !ok || id != first.id || term != first.l.Term {
		s.t.Errorf("leadership moved with no fault: now %q term %d (ok=%v), was %q term %d", id, term, ok, first.id, first.l.Term)
	}
}

func testRelease(s *suite) {
	cs := s.start(3, "r")
	old := s.waitLeader(s.resource, "", 0, s.c.Slack)
	released := time.Now()
	releasedMark := s.rec.mark()
	ctx, cancel := context.WithTimeout(context.Background(), s.c.Slack)
	defer cancel()
	if err := s.byID(cs, old.id).el.Release(ctx); err != nil {
		s.t.Fatalf("Release: %v", err)
	}
	next := s.waitLeader(s.resource, old.id, releasedMark, s.c.Slack)
	end := s.waitEnded(old.id, old.l.Term, s.c.Slack)
	if !end.before(next) {
		s.t.Errorf("old leader's context ended at %v, not before the new leader started at %v", end.at, next.at)
	}
	if next.l.Term <= old.l.Term {
		s.t.Errorf("term after release %d, want > %d", next.l.Term, old.l.Term)
	}
	s.t.Logf("handover after Release: %v", next.at.Sub(released))
	// The released candidate follows the new leader.
	s.waitSeen(old.id, next.id, s.c.Slack)
}

func testNotificationHandler(s *suite) {
	notified := make(chan election.Leadership, 64)
	h := func(ctx context.Context, l election.Leadership) error {
		notified <- l
		return nil // a notification: return at once, the term goes on
	}
	a := s.candidateWith(s.options(s.resource, "n-a"), h)
	var l election.Leadership
	deadline := time.After(s.c.Slack)
	for !l.IsLeader {
		select {
		case l = <-notified:
		case <-deadline:
			s.t.Fatal("n-a did not lead")
		}
	}
	// The term lasts after the handler returned.
	got, err := a.el.Leader(context.Background())
	if err != nil || !got.IsLeader || got.Term != l.Term {
		s.t.Fatalf("Leader() after the handler returned = %+v, %v; want n-a leading term %d", got, err, l.Term)
	}
	b := s.candidate(s.resource, "n-b", nil)
	s.waitSeen(b.id, "n-a", s.c.Slack)
	releasedMark := s.rec.mark()
	ctx, cancel := context.WithTimeout(context.Background(), s.c.Slack)
	defer cancel()
	if err := a.el.Release(ctx); err != nil {
		s.t.Fatalf("Release: %v", err)
	}
	next := s.waitLeader(s.resource, "n-a", releasedMark, s.c.Slack)
	if next.l.Term <= l.Term {
		s.t.Errorf("term after release %d, want > %d", next.l.Term, l.Term)
	}
}

func testCrash(s *suite) {
	cs := s.start(3, "k")
	old := s.waitLeader(s.resource, "", 0, s.c.Slack)
	for _, c := range cs {
		s.waitSeen(c.id, old.id, s.c.Slack)
	}
	crashed := time.Now()
	crashedMark := s.rec.mark()
	s.byID(cs, old.id).link.Cut() // the process is gone: no release, no renewal
	next := s.waitLeader(s.resource, old.id, crashedMark, s.failover())
	end := s.waitEnded(old.id, old.l.Term, s.c.Slack)
	if !end.before(next) {
		s.t.Errorf("crashed leader's context ended at %v, not before the new leader started at %v", end.at, next.at)
	}
	if limit := crashed.Add(s.c.TTL); end.at.After(limit.Add(s.c.Slack)) {
		s.t.Errorf("crashed leader stepped down %v after the crash; TTL is %v", end.at.Sub(crashed), s.c.TTL)
	}
	if next.l.Term <= old.l.Term {
		s.t.Errorf("term after crash %d, want > %d", next.l.Term, old.l.Term)
	}
	s.t.Logf("crash failover: old stepped down after %v, new leader after %v", end.at.Sub(crashed), next.at.Sub(crashed))
}

func testPartition(s *suite) {
	cs := s.start(2, "p")
	old := s.waitLeader(s.resource, "", 0, s.c.Slack)
	var other *candidate
	for _, c := range cs {
		if c.id != old.id {
			other = c
		}
	}
	s.waitSeen(other.id, old.id, s.c.Slack)
	cutAt := time.Now()
	cutAtMark := s.rec.mark()
	link := s.byID(cs, old.id).link
	link.Cut()
	end := s.waitEnded(old.id, old.l.Term, s.c.TTL+s.c.Slack)
	stepDown := s.defaults().TTL - election.StepDownMargin(s.defaults().TTL)
	if end.at.Sub(cutAt) > stepDown+s.c.Slack {
		s.t.Errorf("cut-off leader stepped down after %v; its deadline is %v after its last renewal", end.at.Sub(cutAt), stepDown)
	}
	next := s.waitLeader(s.resource, old.id, cutAtMark, s.failover())
	if !end.before(next) {
		s.t.Errorf("cut-off leader's context ended at %v, not before the new leader started at %v", end.at, next.at)
	}
	if next.id != other.id {
		s.t.Fatalf("new leader %s, want %s", next.id, other.id)
	}
	// Healed, the old leader campaigns again: it follows, then leads. Its
	// failures while cut off may have backed its retries off to
	// MaxRetryDelay (± RetryJitter).
	link.Heal()
	backedOff := time.Duration(float64(election.MaxRetryDelay(s.defaults())) * (1 + election.RetryJitter))
	s.waitSeen(old.id, other.id, s.defaults().WaitTime+backedOff+s.c.Slack)
	releasedMark := s.rec.mark()
	ctx, cancel := context.WithTimeout(context.Background(), s.c.Slack)
	defer cancel()
	if err := other.el.Release(ctx); err != nil {
		s.t.Fatalf("Release: %v", err)
	}
	again := s.waitLeader(s.resource, other.id, releasedMark, s.c.Slack)
	if again.id != old.id || again.l.Term <= next.l.Term {
		s.t.Errorf("after heal and release: leader %s term %d; want %s with term > %d", again.id, again.l.Term, old.id, next.l.Term)
	}
}

// testLateReplies checks that the step-down deadline counts from the start
// of the last successful renewal, not from its reply: the leader's replies
// arrive half a TTL late, then it is cut off. Its store keeps the session a
// TTL after the last renewal reached it; a leader that counted from the
// reply would lead on for half a TTL more, while another candidate leads.
func testLateReplies(s *suite) {
	ttl := s.c.TTL
	opts := func(id string) election.Options {
		o := s.options(s.resource, id)
		// Renew often, and wait for late replies, so that the leader keeps
		// its term while its replies are late: RenewInterval + delay stays
		// well within TTL - StepDownMargin(TTL).
		o.RenewInterval = ttl / 10
		o.RequestTimeout = ttl * 7 / 10
		return o
	}
	a := s.candidateWith(opts("s-a"), s.rec.handler("s-a", nil))
	slow, ok := a.link.(SlowLink)
	if !ok {
		s.t.Skipf("the links of %s cannot delay replies (SlowLink)", s.c.Name)
	}
	old := s.waitLeader(s.resource, "", 0, s.c.Slack)
	b := s.candidateWith(opts("s-b"), s.rec.handler("s-b", nil))
	s.waitSeen(b.id, old.id, s.c.Slack)

	// A first renewal may cost more round trips (a connection, a script
	// to load): let it go through before the replies are delayed.
	time.Sleep(2 * opts("").RenewInterval)
	delay := ttl / 2
	slow.DelayReplies(delay)
	// Let a renewal be answered late: one renewal interval, the delay, and
	// a twentieth of the TTL to spare. (Renewals one after another, each
	// answered half a TTL late, cannot keep a term for long: the leader
	// rightly steps down 9/10 of a TTL after the last one started in time.)
	time.Sleep(opts("").RenewInterval + delay + ttl/20)
	if id, term, _ := s.rec.leader(s.resource); id != old.id || term != old.l.Term {
		s.t.Fatalf("with replies %v late, %q term %d leads; want %s to keep term %d", delay, id, term, old.id, old.l.Term)
	}
	cutAt := time.Now()
	cutAtMark := s.rec.mark()
	a.link.Cut()
	end := s.waitEnded(old.id, old.l.Term, ttl+s.c.Slack)
	if stepDown := ttl - election.StepDownMargin(ttl); end.at.Sub(cutAt) > stepDown+s.c.Slack {
		s.t.Errorf("cut-off leader with late replies stepped down after %v; its deadline is %v after the start of its last renewal", end.at.Sub(cutAt), stepDown)
	}
	next := s.waitLeader(s.resource, old.id, cutAtMark, s.failover())
	if !end.before(next) {
		s.t.Errorf("cut-off leader's context ended at %v, not before the new leader started at %v", end.at, next.at)
	}
	s.t.Logf("replies %v late, then cut: old stepped down after %v, new leader after %v", delay, end.at.Sub(cutAt), next.at.Sub(cutAt))
}

func testRemoved(s *suite, what Removal) {
	s.start(2, "d")
	old := s.waitLeader(s.resource, "", 0, s.c.Slack)
	removed := time.Now()
	removedMark := s.rec.mark()
	// The store frees the leadership at once; the old leader learns it a
	// moment later (Consul's lock-delay covers that moment; elsewhere the
	// fencing token does). What is checked is that it learns promptly.
	s.rec.takenFromOutside(s.resource)
	s.store.Remove(s.t, s.resource, what)
	bound := s.c.Slack
	if what == RemoveSession {
		bound += s.defaults().RenewInterval
	}
	end := s.waitEnded(old.id, old.l.Term, bound)
	s.t.Logf("leader stepped down %v after its %s was removed", end.at.Sub(removed), what)
	next := s.waitLeader(s.resource, "", removedMark, s.failover())
	if next.l.Term <= old.l.Term {
		s.t.Errorf("term after removal %d, want > %d", next.l.Term, old.l.Term)
	}
}

func testIndependent(s *suite) {
	r1, r2 := s.resource+"-one", s.resource+"-two"
	a1, b1 := s.candidate(r1, "i-a1", nil), s.candidate(r1, "i-b1", nil)
	s.candidate(r2, "i-a2", nil)
	s.candidate(r2, "i-b2", nil)
	l1 := s.waitLeader(r1, "", 0, s.c.Slack)
	l2 := s.waitLeader(r2, "", 0, s.c.Slack)
	leader1 := a1
	if l1.id == b1.id {
		leader1 = b1
	}
	releasedMark := s.rec.mark()
	ctx, cancel := context.WithTimeout(context.Background(), s.c.Slack)
	defer cancel()
	if err := leader1.el.Release(ctx); err != nil {
		s.t.Fatalf("Release: %v", err)
	}
	s.waitLeader(r1, l1.id, releasedMark, s.c.Slack)
	if id, term, ok := s.rec.leader(r2); !ok || id != l2.id || term != l2.l.Term {
		s.t.Errorf("releasing %s moved the leadership of %s: now %q term %d, was %q term %d", r1, r2, id, term, l2.id, l2.l.Term)
	}
}

// checkNoLeaks fails the test if a goroutine started after this call is
// left when the test ends. The test must not run in parallel with others.
func (s *suite) checkNoLeaks() {
	leaks := goleak.IgnoreCurrent()
	s.t.Cleanup(func() {
		// Runs after every candidate and the store were closed.
		if err := goleak.Find(leaks); err != nil {
			s.t.Errorf("goroutines left after Close: %v", err)
		}
	})
}

func testClose(s *suite) {
	s.checkNoLeaks()
	cs := s.start(2, "z")
	old := s.waitLeader(s.resource, "", 0, s.c.Slack)
	leader := s.byID(cs, old.id)
	closedMark := s.rec.mark()
	ctx, cancel := context.WithTimeout(context.Background(), s.c.Slack)
	defer cancel()
	if err := leader.el.Close(ctx); err != nil {
		s.t.Fatalf("Close: %v", err)
	}
	if _, _, ok := s.rec.ctxEnd(old.id, old.l.Term); !ok {
		s.t.Errorf("Close returned before the leader's context ended")
	}
	s.waitLeader(s.resource, old.id, closedMark, s.c.Slack) // released: no TTL wait
	if err := leader.el.Close(ctx); err != nil {
		s.t.Errorf("second Close = %v, want nil", err)
	}
	if err := leader.el.Start(ctx, s.rec.handler(old.id, nil)); !errors.Is(err, election.ErrClosed) {
		s.t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
	if err := leader.el.Release(ctx); !errors.Is(err, election.ErrClosed) {
		s.t.Errorf("Release after Close = %v, want ErrClosed", err)
	}
	if _, err := leader.el.Leader(ctx); !errors.Is(err, election.ErrClosed) {
		s.t.Errorf("Leader after Close = %v, want ErrClosed", err)
	}
}

func testCancel(s *suite) {
	cs := s.start(2, "x")
	old := s.waitLeader(s.resource, "", 0, s.c.Slack)
	cancelledMark := s.rec.mark()
	s.byID(cs, old.id).stop()
	s.waitEnded(old.id, old.l.Term, s.c.Slack)
	next := s.waitLeader(s.resource, old.id, cancelledMark, s.c.Slack) // released, not expired
	if next.l.Term <= old.l.Term {
		s.t.Errorf("term %d after cancel, want > %d", next.l.Term, old.l.Term)
	}
}

func testHandlerError(s *suite) {
	calls := 0
	fail := func(l election.Leadership) error {
		calls++
		switch calls {
		case 1:
			return errors.New("boom")
		case 2:
			panic("handler panic")
		}
		return nil
	}
	s.candidate(s.resource, "e-solo", fail)
	first := s.waitLeader(s.resource, "", 0, s.c.Slack)
	s.waitEnded(first.id, first.l.Term, s.c.Slack)
	// The n-th term in a row given up waits RetryDelay(n) ± RetryJitter.
	bound := func(n int) time.Duration {
		return time.Duration(float64(election.RetryDelay(s.defaults(), n))*(1+election.RetryJitter)) + s.c.Slack
	}
	second := s.waitLeader(s.resource, "", first.pos+1, bound(1))
	s.waitEnded(second.id, second.l.Term, s.c.Slack)
	third := s.waitLeader(s.resource, "", second.pos+1, bound(2))
	if second.l.Term <= first.l.Term || third.l.Term <= second.l.Term {
		s.t.Errorf("terms after handler errors: %d, %d, %d; want growing", first.l.Term, second.l.Term, third.l.Term)
	}
	if third.id != "e-solo" {
		s.t.Errorf("leader after errors %s, want e-solo to lead again", third.id)
	}
}

func testInvalidOptions(s *suite) {
	base := s.options(s.resource, "v")
	cases := []struct {
		field string
		edit  func(o *election.Options)
	}{
		{"Resource", func(o *election.Options) { o.Resource = "" }},
		{"Resource", func(o *election.Options) { o.Resource = "has space" }},
		{"Resource", func(o *election.Options) { o.Resource = "/leading-slash" }},
		{"Resource", func(o *election.Options) { o.Resource = "x/../y" }},
		{"Resource", func(o *election.Options) { o.Resource = "x/./z" }},
		{"ID", func(o *election.Options) { o.ID = "bad\nid" }},
		{"Value", func(o *election.Options) { o.Value = make([]byte, election.MaxValueSize+1) }},
		{"TTL", func(o *election.Options) { o.TTL = -time.Second }},
		{"RenewInterval", func(o *election.Options) { o.RenewInterval = -time.Second }},
		{"RenewInterval", func(o *election.Options) { o.RenewInterval = o.TTL }},
		{"RetryInterval", func(o *election.Options) { o.RetryInterval = -time.Second }},
		{"RetryInterval", func(o *election.Options) { o.RetryInterval = time.Nanosecond }},
		{"TTL", func(o *election.Options) { o.TTL = election.MaxTTL + time.Second }},
		{"RequestTimeout", func(o *election.Options) { o.RequestTimeout = o.TTL }},
		{"WaitTime", func(o *election.Options) { o.WaitTime = -time.Second }},
		{"RequestTimeout", func(o *election.Options) { o.RequestTimeout = -time.Second }},
	}
	for _, tc := range cases {
		o := base
		tc.edit(&o)
		el, _, err := s.store.NewCandidate(s.t, o)
		if err == nil {
			_ = el.Close(context.Background())
			s.t.Errorf("options with bad %s accepted", tc.field)
			continue
		}
		if !errors.Is(err, election.ErrInvalidOptions) || !strings.Contains(err.Error(), tc.field) {
			s.t.Errorf("bad %s: error %q; want ErrInvalidOptions naming %s", tc.field, err, tc.field)
		}
	}
	c := s.newCandidate(base)
	if err := c.el.Start(context.Background(), nil); err == nil {
		s.t.Error("Start with a nil handler accepted")
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	if err := c.el.Start(ctx, s.rec.handler(c.id, nil)); err != nil {
		s.t.Fatalf("Start: %v", err)
	}
	if err := c.el.Start(ctx, s.rec.handler(c.id, nil)); !errors.Is(err, election.ErrAlreadyStarted) {
		s.t.Errorf("second Start = %v, want ErrAlreadyStarted", err)
	}
}

func testLeaderAgrees(s *suite) {
	observer := s.newCandidate(s.options(s.resource, "observer"))
	ctx := context.Background()
	if l, err := observer.el.Leader(ctx); err != nil || l.LeaderID != "" || l.IsLeader || l.Term != 0 {
		s.t.Fatalf("Leader() before any candidate = %+v, %v; want no leader", l, err)
	}
	cs := s.start(2, "l")
	for round := 0; round < 2; round++ {
		sinceMark := s.rec.mark()
		if round == 1 {
			id, _, _ := s.rec.leader(s.resource)
			rctx, cancel := context.WithTimeout(ctx, s.c.Slack)
			if err := s.byID(cs, id).el.Release(rctx); err != nil {
				s.t.Fatalf("Release: %v", err)
			}
			cancel()
			s.waitLeader(s.resource, id, sinceMark, s.c.Slack)
		} else {
			s.waitLeader(s.resource, "", 0, s.c.Slack)
		}
		id, term, _ := s.rec.leader(s.resource)
		l, err := observer.el.Leader(ctx)
		if err != nil || l.LeaderID != id || l.Term != term || l.IsLeader || string(l.Value) != "value-of-"+id {
			s.t.Errorf("observer's Leader() = %+v, %v; handlers say %s leads with term %d", l, err, id, term)
		}
		for _, c := range cs {
			l, err := c.el.Leader(ctx)
			if err != nil || l.LeaderID != id || l.Term != term || l.IsLeader != (c.id == id) {
				s.t.Errorf("%s's Leader() = %+v, %v; handlers say %s leads with term %d", c.id, l, err, id, term)
			}
			seen := s.waitSeenTerm(c.id, id, term, s.c.Slack)
			if seen.Term != term {
				s.t.Errorf("%s's handler was told term %d, Leader() says %d", c.id, seen.Term, term)
			}
		}
	}
}

func testChurn(s *suite) {
	cs := s.start(3, "t")
	var last leaderAt
	last.pos = -1
	for i := 0; i < 5; i++ {
		// Every candidate may have released just now: they wait RetryInterval.
		cur := s.waitLeader(s.resource, "", last.pos+1, s.defaults().RetryInterval+s.c.Slack)
		if i > 0 && cur.l.Term <= last.l.Term {
			s.t.Fatalf("round %d: term %d after %d", i, cur.l.Term, last.l.Term)
		}
		last = cur
		ctx, cancel := context.WithTimeout(context.Background(), s.c.Slack)
		if err := s.byID(cs, cur.id).el.Release(ctx); err != nil {
			s.t.Fatalf("Release: %v", err)
		}
		cancel()
	}
}
