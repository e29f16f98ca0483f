// Package turntest checks that a backend wakes the candidates of one
// process in turn (election.TurnWatcher): at a graceful handover, the next
// leader acquires, and its leader call begins, before any other candidate
// of the process has learnt of the change.
package turntest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// Params size a Check run.
type Params struct {
	// Candidates of one resource, on the backend.
	Candidates int
	// Handovers timed.
	Handovers int
	// Options of every candidate; Resource and ID are set by Check.
	Options election.Options
	// TurnBound is how long the backend lets the candidate given the turn
	// take before it wakes the others anyway. A follower's watch that
	// returns half that long or more after the first one of a handover is
	// not counted, nor one that returns TurnBound or more after the
	// release began: the next leader was slow, as a busy machine makes
	// it, and the backend kept its bound (counted from when it gave the
	// turn, which is after the release began, and can be well before the
	// first watch's goroutine ran). A backend that wakes every follower at
	// a change does so within a few milliseconds of the first, and of the
	// release. Zero counts every return before the leader call.
	TurnBound time.Duration
}

// Check starts p.Candidates electors of one resource on b, releases the
// leader p.Handovers times, and fails t when the followers' watches
// returned a change before the next leader's call began (TurnTaken) more
// than p.Handovers/2 times in all: a backend that woke every follower at each
// change would do so about once per follower per handover.
func Check(t *testing.T, b election.Backend, p Params) {
	t.Helper()
	if p.Handovers < 2 {
		p.Handovers = 2
	}
	log := &eventLog{}
	cb := &backend{Backend: b, log: log}
	leaders := make(chan *election.Elector, p.Candidates)
	ctx := context.Background()
	for i := range p.Candidates {
		o := p.Options
		o.Resource, o.ID = "turn", fmt.Sprint("c", i)
		el, err := election.New(cb, o)
		if err != nil {
			t.Fatal(err)
		}
		if err := el.Start(ctx, election.LeaderOnly(func(ctx context.Context, term uint64) error {
			leaders <- el
			<-ctx.Done()
			return nil
		})); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = el.Close(cctx)
		})
	}
	next := func() *election.Elector {
		t.Helper()
		return nextLeader(t, leaders, 30*time.Second)
	}
	leader := next()
	// Every other candidate follows: it waits in WatchTurn. One still
	// starting when the leader releases would learn of the release as its
	// first read, whatever the turn.
	for deadline := time.Now().Add(30 * time.Second); log.inTurn() < p.Candidates-1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d followers wait in WatchTurn after 30s", log.inTurn(), p.Candidates-1)
		}
	}
	time.Sleep(100 * time.Millisecond)
	early := 0
	for i := range p.Handovers {
		log.reset()
		if err := leader.Release(ctx); err != nil {
			t.Fatal(err)
		}
		leader = next()
		n, woke := log.before(p.TurnBound)
		t.Logf("handover %d: %d of %d followers' watches returned a change before the next leader's call began (%d watches in all)", i, n, p.Candidates-1, woke)
		early += n
		time.Sleep(300 * time.Millisecond)
	}
	if early > p.Handovers/2 {
		t.Errorf("%d followers' watches returned a change before the next leader's call began, in %d handovers among %d candidates of one process; want at most %d: only the next in line should wake first",
			early, p.Handovers, p.Candidates, p.Handovers/2)
	}
}

// eventLog records when watches of followers returned a change, and when
// a leader call was about to begin.
type eventLog struct {
	mu       sync.Mutex
	waiting  map[string]int // WatchTurn calls in flight, by session
	woke     []*wake
	acquired time.Time // the first leader call about to begin since reset
	acquirer string    // its session
	released time.Time // when reset was called, as the release began
}

// wake is a watch that returned a change, and its session. passed: it
// showed no leader, and the candidate watched again rather than acquire,
// as one holding off after its own term passes its turn on.
type wake struct {
	at      time.Time
	session string
	free    bool
	holder  string // the session the record showed as the leader's
	passed  bool
}

// watching counts a WatchTurn call of session in flight (d = 1) or
// returned (d = -1).
func (l *eventLog) watching(session string, d int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.waiting == nil {
		l.waiting = map[string]int{}
	}
	if l.waiting[session] += d; l.waiting[session] == 0 {
		delete(l.waiting, session)
	}
}

// inTurn returns how many sessions wait in WatchTurn.
func (l *eventLog) inTurn() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.waiting)
}

func (l *eventLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.woke, l.acquired, l.acquirer, l.released = nil, time.Time{}, "", time.Now()
}

func (l *eventLog) wake(at time.Time, session string, rec election.Record) *wake {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := &wake{at: at, session: session, free: rec.Free(), holder: rec.Session}
	l.woke = append(l.woke, w)
	return w
}

// pass marks w passed, if it showed no leader.
func (l *eventLog) pass(w *wake) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w.passed = w.free
}

func (l *eventLog) acquire(at time.Time, session string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.acquired.IsZero() {
		l.acquired, l.acquirer = at, session
	}
}

// before returns how many watches of candidates other than the next
// leader returned the release (a record with no leader, or with the next
// leader, as a queueing store shows it at once) before its leader
// call began, within half of bound after the first watch that returned
// and within bound of the release (when bound is set), and how many
// returned in all. A watch that
// returns the leader being released, late, belongs to the handover before.
func (l *eventLog) before(bound time.Duration) (n, all int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first time.Time
	for _, w := range l.woke {
		if first.IsZero() || w.at.Before(first) {
			first = w.at
		}
	}
	for _, w := range l.woke {
		if bound > 0 && (!w.at.Before(first.Add(bound/2)) || !w.at.Before(l.released.Add(bound))) {
			continue
		}
		if (w.free || w.holder == l.acquirer) && w.session != l.acquirer && !w.passed && (l.acquired.IsZero() || w.at.Before(l.acquired)) {
			n++
		}
	}
	return n, len(l.woke)
}

// backend wraps a backend whose sessions watch in turn, to log the
// watches and acquisitions of its electors.
type backend struct {
	election.Backend
	log *eventLog
}

func (b *backend) ValidateOptions(o election.Options) error {
	if v, ok := b.Backend.(election.OptionsValidator); ok {
		return v.ValidateOptions(o)
	}
	return nil
}

// Watch logs a return with a change: a campaign that watched through it
// rather than through its claim would be woken with every other.
func (b *backend) Watch(ctx context.Context, resource string, after uint64, wait time.Duration) (election.Record, error) {
	rec, err := b.Backend.Watch(ctx, resource, after, wait)
	if err == nil && after != 0 && wait > 0 && rec.Revision != after {
		b.log.wake(time.Now(), "", rec)
	}
	return rec, err
}

func (b *backend) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	s, err := b.Backend.NewSession(ctx, p)
	if err != nil {
		return nil, err
	}
	tw, ok := s.(interface {
		election.Session
		election.TurnWatcher
	})
	if !ok {
		return nil, fmt.Errorf("the %s backend's sessions do not implement election.TurnWatcher", b.Name())
	}
	return &session{inner: tw, log: b.log}, nil
}

type session struct {
	inner interface {
		election.Session
		election.TurnWatcher
	}
	log *eventLog

	mu   sync.Mutex
	last *wake // the last wake, until the candidate acquires or watches again
	led  bool  // the last Acquire returned the leadership
}

func (s *session) Info() election.SessionInfo      { return s.inner.Info() }
func (s *session) Renew(ctx context.Context) error { return s.inner.Renew(ctx) }
func (s *session) Close(ctx context.Context) error { return s.inner.Close(ctx) }

func (s *session) Acquire(ctx context.Context) (election.Acquisition, error) {
	s.mu.Lock()
	s.last = nil
	s.mu.Unlock()
	acq, err := s.inner.Acquire(ctx)
	s.mu.Lock()
	s.led = err == nil && acq.Session == s.inner.Info().ID
	s.mu.Unlock()
	return acq, err
}

// TurnTaken logs the leader call about to begin, after an Acquire that
// returned the leadership, then ends the turn.
func (s *session) TurnTaken() {
	s.mu.Lock()
	led := s.led
	s.mu.Unlock()
	if led {
		s.log.acquire(time.Now(), s.inner.Info().ID)
	}
	s.inner.TurnTaken()
}

// WatchTurn logs a return with a change. A candidate that watches again,
// rather than acquire, after a wake that showed no leader holds off: it
// passed that turn on.
func (s *session) WatchTurn(ctx context.Context, after uint64, wait time.Duration) (election.Record, error) {
	s.mu.Lock()
	if s.last != nil {
		s.log.pass(s.last)
		s.last = nil
	}
	s.mu.Unlock()
	id := s.inner.Info().ID
	s.log.watching(id, 1)
	rec, err := s.inner.WatchTurn(ctx, after, wait)
	s.log.watching(id, -1)
	if err == nil && after != 0 && rec.Revision != after {
		w := s.log.wake(time.Now(), id, rec)
		s.mu.Lock()
		s.last = w
		s.mu.Unlock()
	}
	return rec, err
}

// Herd starts n electors of one resource on b, each with a RetryInterval
// of a minute, so that a releasing leader does not campaign again while a
// test runs, waits for the first to lead and a second more for every other
// candidate to follow, and returns handOver: it releases the leadership,
// waits for the next leader, and then 200 ms more for the followers to
// settle. Each wait for a leader fails t after 10 s. The electors are
// closed when t ends.
func Herd(t *testing.T, b election.Backend, n int) (handOver func()) {
	t.Helper()
	ctx := context.Background()
	leaders := make(chan *election.Elector, n)
	for i := range n {
		el, err := election.New(b, election.Options{Resource: "herd", ID: fmt.Sprint("c", i), TTL: 10 * time.Second, RetryInterval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		if err := el.Start(ctx, election.LeaderOnly(func(ctx context.Context, term uint64) error {
			leaders <- el
			<-ctx.Done()
			return nil
		})); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = el.Close(ctx) })
	}
	next := func() *election.Elector {
		t.Helper()
		return nextLeader(t, leaders, 10*time.Second)
	}
	leader := next()
	time.Sleep(time.Second) // every candidate follows
	return func() {
		t.Helper()
		if err := leader.Release(ctx); err != nil {
			t.Fatal(err)
		}
		leader = next()
		time.Sleep(200 * time.Millisecond)
	}
}

// nextLeader returns the next elector to lead, from leaders, or fails t
// after timeout.
func nextLeader(t *testing.T, leaders <-chan *election.Elector, timeout time.Duration) *election.Elector {
	t.Helper()
	select {
	case el := <-leaders:
		return el
	case <-time.After(timeout):
		t.Fatalf("no leader within %v", timeout)
		return nil
	}
}
