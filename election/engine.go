package election

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// engine implements Elector on any Backend. Its run goroutine owns the
// campaign and makes the leader calls of the handler; a keepalive goroutine
// renews the current session and enforces the step-down deadline; a
// dispatcher goroutine makes the follower calls.
type engine struct {
	b    Backend
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	started bool
	closed  bool
	stop    context.CancelFunc
	done    chan struct{} // closed once every goroutine of a started elector has exited
	term    *term         // the current term; nil when not leading
	session SessionInfo   // the current session; zero when none

	last    notice // the last notification sent; owned by the run goroutine
	highest uint64 // the highest term seen of the resource; owned by the run goroutine
	raised  uint64 // the last floor raised after a store lost its terms; owned by the run goroutine
}

// term is one period of leadership.
type term struct {
	number      uint64
	ctx         context.Context
	cancel      context.CancelCauseFunc
	ka          *keepalive    // the session's renewals
	handlerDone chan struct{} // closed when the handler's leader call returned
	ended       chan struct{} // closed once the store has been released
}

// end ends the term for cause: its context is cancelled and its session is
// no longer renewed, even while the handler keeps running. (A term that ends
// with its session's context stops the renewals by that.)
func (t *term) end(cause error) {
	t.cancel(cause)
	t.ka.stopRenewing()
}

// notice is what makes two notifications the same, for de-duplication.
type notice struct {
	valid    bool
	isLeader bool
	leaderID string
	term     uint64
	holder   string
	errClass string
}

func newEngine(b Backend, opts Options) *engine {
	return &engine{
		b:    b,
		opts: opts,
		log:  opts.Logger.With("resource", opts.Resource, "id", opts.ID, "backend", b.Name()),
	}
}

func (e *engine) Start(ctx context.Context, handler Handler) error {
	if handler == nil {
		return fmt.Errorf("%w: handler is nil", ErrInvalidOptions)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.closed:
		return ErrClosed
	case e.started:
		return ErrAlreadyStarted
	}
	e.started = true
	runCtx, stop := context.WithCancel(ctx)
	e.stop = stop
	e.done = make(chan struct{})
	d := newDispatcher(handler, e.log)
	go d.loop()
	go func() {
		defer close(e.done)
		e.run(runCtx, d)
		d.close()
		<-d.done
	}()
	return nil
}

func (e *engine) Release(ctx context.Context) error {
	e.mu.Lock()
	closed, t := e.closed, e.term
	e.mu.Unlock()
	if closed {
		return ErrClosed
	}
	if t == nil {
		return nil
	}
	t.end(ErrReleased)
	select {
	case <-t.handlerDone:
	default:
		return nil // the store is released once the handler returns
	}
	select {
	case <-t.ended:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("election: release of %q: %w", e.opts.Resource, ctx.Err())
	}
}

func (e *engine) Leader(ctx context.Context) (Leadership, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return Leadership{}, ErrClosed
	}
	rctx, cancel := context.WithTimeout(ctx, e.opts.RequestTimeout)
	defer cancel()
	rec, err := e.b.Watch(rctx, e.opts.Resource, 0, 0)
	if err != nil {
		return Leadership{}, fmt.Errorf("election: read leader of %q: %w", e.opts.Resource, err)
	}
	e.mu.Lock()
	info, leading := e.session, e.term != nil && e.term.ctx.Err() == nil
	e.mu.Unlock()
	l := e.leadership(rec, info)
	l.IsLeader = leading && info.ID != "" && rec.Session == info.ID
	return l, nil
}

func (e *engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	started, stop, done := e.started, e.stop, e.done
	e.mu.Unlock()
	if started {
		stop()
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("election: close %q: %w (is the handler ignoring its context?)", e.opts.Resource, ctx.Err())
		}
	}
	if c, ok := e.b.(io.Closer); ok {
		if err := c.Close(); err != nil {
			return fmt.Errorf("election: close %s backend: %w", e.b.Name(), err)
		}
	}
	return nil
}

// run campaigns until ctx ends, one session after another.
func (e *engine) run(ctx context.Context, d *dispatcher) {
	var holdOff time.Time
	for ctx.Err() == nil {
		created := time.Now()
		sess, err := e.newSession(ctx)
		if err != nil {
			if ctx.Err() == nil {
				e.fail(ctx, d, "create session", err)
				sleep(ctx, e.opts.RetryInterval)
			}
			continue
		}
		holdOff = e.campaign(ctx, d, &sessionHandle{Session: sess}, created, holdOff)
	}
}

// campaign runs one session: it follows the leader, acquires when the
// resource is free, and leads at most one term. It returns the time before
// which the next session must not acquire.
func (e *engine) campaign(ctx context.Context, d *dispatcher, sess *sessionHandle, created, holdOff time.Time) time.Time {
	info := sess.Info()
	e.setSession(info)
	ka := startKeepalive(ctx, e, sess, created)
	defer func() {
		ka.stop()
		e.closeSession(ctx, sess)
		e.setSession(SessionInfo{})
	}()
	sctx := ka.ctx
	var rec Record // Revision 0: not read yet
	tried := false // Acquire was called in this session: a queueing store (etcd) has it queued
	for {
		if sctx.Err() != nil {
			if ctx.Err() == nil {
				e.log.Warn("session ended", "session", info.ID, "cause", context.Cause(sctx))
			}
			return holdOff
		}
		switch {
		case tried && rec.Revision != 0 && !rec.Free() && rec.Session != info.ID:
			// Another candidate leads: wait for a change.
			r, err := e.watch(sctx, rec.Revision, e.opts.WaitTime)
			if err != nil {
				if sctx.Err() == nil {
					e.fail(ctx, d, "watch leader", err)
					sleep(sctx, e.opts.RetryInterval)
				}
				continue
			}
			rec = r
			e.saw(info, rec)
			e.observeUnlessTaking(ctx, d, info, rec, holdOff)
			continue
		case time.Until(holdOff) > 0:
			// Free, but this candidate leaves others the first chance.
			wait := time.Until(holdOff)
			r, err := e.watch(sctx, rec.Revision, min(wait, e.opts.WaitTime))
			if err != nil {
				if sctx.Err() == nil {
					e.fail(ctx, d, "watch leader", err)
					sleep(sctx, min(wait, e.opts.RetryInterval))
				}
				continue
			}
			rec = r
			e.saw(info, rec)
			e.observeUnlessTaking(ctx, d, info, rec, holdOff)
			continue
		}
		sent := time.Now()
		tried = true
		acq, err := e.acquire(sctx, sess)
		if err != nil {
			if sctx.Err() != nil {
				continue
			}
			if errors.Is(err, ErrSessionLost) {
				e.log.Warn("session lost while acquiring", "session", info.ID, "err", err)
				return holdOff
			}
			e.fail(ctx, d, "acquire", err)
			rec = Record{}
			sleep(sctx, e.opts.RetryInterval)
			continue
		}
		rec = acq.Record
		if rec.Session == info.ID {
			if acq.Renewed {
				ka.renewed(sent)
			}
			if e.termWentBack(ctx, sctx, d, rec) {
				return holdOff // the session's Close releases the record
			}
			e.highest = max(e.highest, rec.Term)
			return e.lead(ctx, sctx, d, sess, ka, rec)
		}
		e.saw(info, rec)
		e.observe(ctx, d, info, rec)
		if rec.Free() {
			wait := acq.RetryAfter
			if wait <= 0 {
				wait = e.opts.RetryInterval
			}
			holdOff = time.Now().Add(wait)
		}
	}
}

// lead runs one term, from its acquisition until the store is released, and
// returns the time before which this elector must not acquire again.
func (e *engine) lead(ctx, sctx context.Context, d *dispatcher, sess *sessionHandle, ka *keepalive, rec Record) time.Time {
	info := sess.Info()
	tctx, cancel := ka.termContext() // ends with sctx, and reports the deadline itself
	defer cancel(nil)
	t := &term{number: rec.Term, ctx: tctx, cancel: cancel, ka: ka, handlerDone: make(chan struct{}), ended: make(chan struct{})}
	e.setTerm(t)
	l := Leadership{Resource: e.opts.Resource, LeaderID: e.opts.ID, Value: e.opts.Value, IsLeader: true, Term: rec.Term, Session: info}
	e.last = noticeOf(l, rec.Session)
	e.log.Info("became leader", "term", rec.Term, "session", info.ID)
	// Watch the record in the background: it must stay ours. The term ends
	// when tctx does, without waiting for a blocked read to unwind. The read
	// itself is abandoned only once the store is released: a release ends a
	// blocking read at once, and a read cut off on the way would cost the
	// store and the client a connection at the moment of handover.
	watched := make(chan struct{})
	wctx, stopWatch := context.WithCancel(sctx)
	defer stopWatch()
	go func() {
		defer close(watched)
		e.watchTerm(t, wctx, info, rec)
	}()
	// The leader call runs on this goroutine, which has nothing else to do
	// until the term ends: the handler learns of the term without a
	// goroutine switch, and the store is released as soon as it returns.
	stopWarning := e.warnWhileOverdue(t)
	d.callHere(event{ctx: tctx, l: l, done: t.handlerDone, onError: func(err error) {
		t.end(fmt.Errorf("%w: %w", ErrHandlerFailed, err))
	}})
	stopWarning()
	<-tctx.Done() // a handler may return before its term ends
	cause := context.Cause(tctx)
	ka.halt()
	e.log.Info("term ended", "term", t.number, "cause", cause)
	e.closeSession(ctx, sess)
	stopWatch()
	close(t.ended)
	<-watched
	e.setTerm(nil)
	e.notify(ctx, d, Leadership{Resource: e.opts.Resource, Session: info}, "")

	if errors.Is(cause, ErrReleased) || errors.Is(cause, ErrHandlerFailed) {
		return time.Now().Add(e.opts.RetryInterval)
	}
	return time.Time{}
}

// saw notes the term of a record held by another session. (A record of
// this candidate's own session, as a queueing store shows before the
// acquisition, carries the term the acquisition is checked against.)
func (e *engine) saw(own SessionInfo, rec Record) {
	if rec.Session != own.ID {
		e.highest = max(e.highest, rec.Term)
	}
}

// termWentBack reports whether a term just acquired is not above the
// highest term this elector has seen, as when the store lost its data (a
// rebuilt cluster, a restored backup, a flushed server) and issues terms
// from the start again. A fencing token must only grow, so the elector then
// raises the store's term floor above that highest term and gives the
// acquisition up; the next one gets a term above the floor. A backend that
// cannot raise its floor, or one whose terms stay low after a raise, is
// logged and its term led with.
func (e *engine) termWentBack(ctx, sctx context.Context, d *dispatcher, rec Record) bool {
	if rec.Term > e.highest {
		return false
	}
	r, ok := e.b.(TermFloorRaiser)
	if !ok || e.raised >= e.highest {
		e.log.Error("the store issued a term not above one seen before; fenced writes with it will be refused",
			"term", rec.Term, "highest_seen", e.highest)
		return false
	}
	e.log.Warn("the store issued a term not above one seen before, as after a loss of its data; raising its term floor and campaigning again",
		"term", rec.Term, "highest_seen", e.highest)
	rctx, cancel := context.WithTimeout(sctx, e.opts.RequestTimeout)
	defer cancel()
	if err := r.RaiseTermFloor(rctx, e.opts.Resource, e.highest); err != nil {
		if sctx.Err() == nil {
			e.fail(ctx, d, "raise term floor", err)
			sleep(sctx, e.opts.RetryInterval)
		}
		return true
	}
	e.raised = e.highest
	return true
}

// watchTerm watches a leader's record until the term ends, and ends the
// term when the record is no longer this session's. A blocking read returns
// at once on any change, so it may wait long: LeaderWait. Its reads run under
// wctx, which ends after the term, once the store is released.
func (e *engine) watchTerm(t *term, wctx context.Context, own SessionInfo, rec Record) {
	for t.ctx.Err() == nil {
		r, err := e.watch(wctx, rec.Revision, LeaderWait(e.opts))
		if err != nil {
			if t.ctx.Err() == nil {
				e.log.Warn("leader cannot watch its record", "term", rec.Term, "err", err)
				sleep(t.ctx, min(e.opts.RetryInterval, e.opts.RenewInterval))
			}
			continue
		}
		if r.Session != own.ID {
			t.end(fmt.Errorf("%w: the store shows %s", ErrLeadershipLost, describe(r)))
			return
		}
		rec.Revision = r.Revision
	}
}

// warnWhileOverdue warns while the leader call of t keeps running after
// its term ended: at the first check after the end, then once every TTL.
// It checks on a timer, every TTL from the start of the call, so that the
// end of a term costs nothing. The returned function, called once the call
// returned, stops the checks.
func (e *engine) warnWhileOverdue(t *term) (stop func()) {
	var (
		mu      sync.Mutex
		stopped bool
		since   time.Time // when a check first found the term ended
		timer   *time.Timer
	)
	check := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if t.ctx.Err() != nil {
			now := time.Now()
			if since.IsZero() {
				since = now
			}
			e.log.Warn("handler still running after its term ended; this elector will not campaign until it returns",
				"term", t.number, "for_at_least", now.Sub(since).Round(time.Millisecond))
		}
		timer.Reset(e.opts.TTL)
	}
	mu.Lock()
	timer = time.AfterFunc(e.opts.TTL, check)
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		timer.Stop()
		mu.Unlock()
	}
}

func (e *engine) newSession(ctx context.Context) (Session, error) {
	rctx, cancel := context.WithTimeout(ctx, e.opts.RequestTimeout)
	defer cancel()
	return e.b.NewSession(rctx, SessionParams{Resource: e.opts.Resource, ID: e.opts.ID, Value: e.opts.Value, TTL: e.opts.TTL})
}

func (e *engine) acquire(ctx context.Context, s Session) (Acquisition, error) {
	rctx, cancel := context.WithTimeout(ctx, e.opts.RequestTimeout)
	defer cancel()
	return s.Acquire(rctx)
}

func (e *engine) watch(ctx context.Context, after uint64, wait time.Duration) (Record, error) {
	rctx, cancel := context.WithTimeout(ctx, wait+e.opts.RequestTimeout)
	defer cancel()
	return e.b.Watch(rctx, e.opts.Resource, after, wait)
}

// closeSession releases and ends a session with a fresh, bounded context, so
// that a cancelled elector still releases.
func (e *engine) closeSession(ctx context.Context, s *sessionHandle) {
	s.once.Do(func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.RequestTimeout)
		defer cancel()
		if err := s.Session.Close(cctx); err != nil {
			e.log.Warn("could not close session", "session", s.Info().ID, "err", err)
		}
	})
}

// observe notifies the handler of a record seen as a follower.
func (e *engine) observe(ctx context.Context, d *dispatcher, own SessionInfo, rec Record) {
	if rec.Session == own.ID && !rec.Free() {
		return // this candidate is about to acquire
	}
	e.notify(ctx, d, e.leadership(rec, own), rec.Session)
}

// observeUnlessTaking is observe, except for a free record that this
// candidate acquires at once: a release that is taken over at once is not
// announced as a time without a leader; the acquisition's outcome is.
func (e *engine) observeUnlessTaking(ctx context.Context, d *dispatcher, own SessionInfo, rec Record, holdOff time.Time) {
	if rec.Free() && time.Until(holdOff) <= 0 {
		return
	}
	e.observe(ctx, d, own, rec)
}

// fail logs a failed campaign step and tells the handler, once per kind of
// failure, that this elector cannot campaign.
func (e *engine) fail(ctx context.Context, d *dispatcher, step string, err error) {
	err = fmt.Errorf("election: %s for %q: %w", step, e.opts.Resource, err)
	class := "unavailable"
	if errors.Is(err, ErrPermissionDenied) {
		class = "permission"
		e.log.Error("store refused the elector", "step", step, "err", err)
	} else {
		e.log.Warn("store request failed", "step", step, "err", err)
	}
	e.notify(ctx, d, Leadership{Resource: e.opts.Resource, Session: e.currentSession(), Err: err}, class)
}

func (e *engine) notify(ctx context.Context, d *dispatcher, l Leadership, holderOrClass string) {
	n := noticeOf(l, holderOrClass)
	if l.Err != nil {
		n = notice{valid: true, errClass: holderOrClass}
	}
	if n == e.last {
		return
	}
	e.last = n
	d.enqueue(event{ctx: ctx, l: l})
}

func noticeOf(l Leadership, holder string) notice {
	return notice{valid: true, isLeader: l.IsLeader, leaderID: l.LeaderID, term: l.Term, holder: holder}
}

func (e *engine) leadership(rec Record, own SessionInfo) Leadership {
	return Leadership{Resource: e.opts.Resource, LeaderID: rec.LeaderID, Value: rec.Value, Term: rec.Term, Session: own}
}

func (e *engine) setTerm(t *term) {
	e.mu.Lock()
	e.term = t
	e.mu.Unlock()
}

func (e *engine) setSession(info SessionInfo) {
	e.mu.Lock()
	e.session = info
	e.mu.Unlock()
}

func (e *engine) currentSession() SessionInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.session
}

func describe(r Record) string {
	if r.Free() {
		return "no leader"
	}
	return fmt.Sprintf("leader %q (term %d)", r.LeaderID, r.Term)
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// sessionHandle is a session the engine closes once.
type sessionHandle struct {
	Session
	once sync.Once
}
