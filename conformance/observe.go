package conformance

import (
	"context"
	"sync"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/election/health"
)

// observed keeps the events of one candidate's Observer.
type observed struct {
	mu      sync.Mutex
	changed chan struct{}
	lastOK  time.Time // when the last successful renewal was sent
	ends    []observedEnd
}

type observedEnd struct {
	election.TermEnd
	at     time.Time
	lastOK time.Time // the last successful renewal sent before the end
}

func newObserved() *observed { return &observed{changed: make(chan struct{})} }

func (o *observed) signalLocked() {
	close(o.changed)
	o.changed = make(chan struct{})
}

func (o *observed) observer() *election.Observer {
	return &election.Observer{
		Renewed: func(r election.Renewal) {
			now := time.Now()
			o.mu.Lock()
			defer o.mu.Unlock()
			if r.Err == nil {
				o.lastOK = now.Add(-r.Latency)
			}
		},
		TermEnded: func(e election.TermEnd) {
			now := time.Now()
			o.mu.Lock()
			defer o.mu.Unlock()
			o.ends = append(o.ends, observedEnd{TermEnd: e, at: now, lastOK: o.lastOK})
			o.signalLocked()
		},
	}
}

// waitEnd waits for the TermEnded of term.
func (o *observed) waitEnd(s *suite, term uint64, within time.Duration) observedEnd {
	s.t.Helper()
	timeout := time.NewTimer(within)
	defer timeout.Stop()
	for {
		o.mu.Lock()
		ch := o.changed
		for _, e := range o.ends {
			if e.Term == term {
				o.mu.Unlock()
				return e
			}
		}
		o.mu.Unlock()
		select {
		case <-ch:
		case <-timeout.C:
			s.t.Fatalf("no TermEnded of term %d within %v", term, within)
		}
	}
}

// testObservedStepDown: a leader cut off from its store reports the end of
// its term, with cause store_unreachable, by its step-down deadline: the
// start of its last successful renewal + TTL - StepDownMargin(TTL), before
// the store can end its session.
func testObservedStepDown(s *suite) {
	obs := newObserved()
	o := s.options(s.resource, "o-a")
	o.Observers = []*election.Observer{obs.observer()}
	a := s.candidateWith(o, s.rec.handler(o.ID, nil))
	old := s.waitLeader(s.resource, "", 0, s.c.Slack)
	// Let a renewal go through before the cut.
	time.Sleep(s.defaults().RenewInterval + s.defaults().RequestTimeout/2)
	a.link.Cut()
	defer a.link.Heal()
	e := obs.waitEnd(s, old.l.Term, s.c.TTL+s.c.Slack)
	if e.Cause != election.CauseStoreUnreachable {
		s.t.Errorf("cut-off leader's term ended with cause %v (%v), want %v", e.Cause, e.Err, election.CauseStoreUnreachable)
	}
	if e.lastOK.IsZero() {
		s.t.Fatalf("no successful renewal was reported before the cut")
	}
	ttl := s.c.TTL
	deadline := e.lastOK.Add(ttl - election.StepDownMargin(ttl))
	// The end is reported at the deadline, give or take scheduling, and
	// always before the store may end the session, a TTL after the
	// renewal.
	if late := e.at.Sub(deadline); late > election.StepDownMargin(ttl) {
		s.t.Errorf("TermEnded came %v after the step-down deadline, at %v after the last renewal (TTL %v)", late, e.at.Sub(e.lastOK), ttl)
	}
	if early := deadline.Sub(e.at); early > s.defaults().RenewInterval {
		s.t.Errorf("TermEnded came %v before the step-down deadline", early)
	}
	s.t.Logf("cut-off leader: TermEnded %v after its last renewal was sent (deadline %v)", e.at.Sub(e.lastOK), ttl-election.StepDownMargin(ttl))
}

// testObservedRemoved: a leader whose session or record is removed from
// outside reports the end of its term with that cause, within the bound of
// testRemoved.
func testObservedRemoved(s *suite, what Removal) {
	obs := newObserved()
	o := s.options(s.resource, "o-r")
	o.Observers = []*election.Observer{obs.observer()}
	s.candidateWith(o, s.rec.handler(o.ID, nil))
	old := s.waitLeader(s.resource, "", 0, s.c.Slack)
	removed := time.Now()
	s.rec.takenFromOutside(s.resource)
	s.store.Remove(s.t, s.resource, what)
	bound := s.c.Slack
	if what == RemoveSession {
		bound += s.defaults().RenewInterval
	}
	e := obs.waitEnd(s, old.l.Term, bound)
	// The store frees the record with the session: the leader learns
	// either from its watch (lost) or from its renewal (session lost). A
	// store whose session is the record itself (Redis) ends the session
	// with the record.
	if e.Cause != election.CauseSessionLost && e.Cause != election.CauseLost {
		s.t.Errorf("%s removed: cause %v (%v), want %v or %v", what, e.Cause, e.Err, election.CauseLost, election.CauseSessionLost)
	}
	s.t.Logf("%s removed: TermEnded %v after, cause %v", what, e.at.Sub(removed), e.Cause)
}

// testObservedOverrun: a handler that keeps running after its term ended
// turns a health.Check attached to its elector unhealthy, at the latest a
// TTL after its call began plus MaxOverrun, and healthy again once it
// returns.
func testObservedOverrun(s *suite) {
	check, err := health.New(health.Options{TTL: s.c.TTL})
	if err != nil {
		s.t.Fatal(err)
	}
	o := s.options(s.resource, "o-h")
	o.Observers = []*election.Observer{check.Observer()}
	began := make(chan struct{}, 1)
	unblock := make(chan struct{})
	defer func() {
		select {
		case <-unblock:
		default:
			close(unblock)
		}
	}()
	a := s.candidateWith(o, election.LeaderOnly(func(ctx context.Context, _ uint64) error {
		began <- struct{}{}
		<-unblock // ignores ctx
		return nil
	}))
	select {
	case <-began:
	case <-time.After(s.c.Slack):
		s.t.Fatalf("no leader call within %v", s.c.Slack)
	}
	start := time.Now()
	if err := check.Err(); err != nil {
		s.t.Fatalf("a leader in its term: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.c.Slack)
	defer cancel()
	if err := a.el.Release(ctx); err != nil {
		s.t.Fatal(err)
	}
	bound := s.c.TTL + check.Options().MaxOverrun + s.c.Slack
	if !poll(bound, func() bool { return check.Err() != nil }) {
		s.t.Fatalf("the check still passes %v after the release of a handler that ignores its end", bound)
	}
	s.t.Logf("overrunning handler: unhealthy %v after its call began: %v", time.Since(start), check.Err())
	close(unblock)
	if !poll(s.c.Slack, func() bool { return check.Err() == nil }) {
		s.t.Errorf("the check still fails once the handler returned: %v", check.Err())
	}
}
