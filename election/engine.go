package election

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// engine is an Elector's machinery, on any Backend; Elector's methods call
// its methods of the same name. Its runner owns the campaign, on one
// goroutine at a time, and parks it for a term; a leader call of the handler
// runs on a goroutine of its own; a keepalive goroutine
// renews the current session and enforces the step-down deadline; a
// dispatcher goroutine makes the follower calls.
type engine struct {
	b      Backend
	opts   Options
	shared *SharedSession // the session of every term; nil for a private session per campaign
	// ownsBackend: Close closes b (NewOwning).
	ownsBackend bool

	mu      sync.Mutex
	started bool
	closed  bool // Close was called
	runDone bool // the campaign of a started elector and its dispatcher have ended
	// raisedLast, owned by the runner as the fields below, is here where
	// it costs no padding: see startContext.
	raisedLast bool // the last acquisition was given up, and the floor raised, for a low term
	// cancelRun ends the context of the elector's run; campaign, when set,
	// is its campaign on the shared session, whose contexts do not derive
	// from it, and which stopRunLocked ends (campaign.endLocked).
	runCtx    context.Context
	cancelRun context.CancelFunc
	campaign  *campaign
	finished  chan struct{} // made by the first Close; closed once nothing of the elector is left
	closeErr  error         // the backend's Close error; written before finished is closed
	term      *term         // the current term; nil when not leading
	session   SessionInfo   // the current session; zero when none
	closing   chan struct{} // closed by the first Close; made by closingChan, or by Close

	// What the handler was last given, for IsLeader and State; stored by
	// the dispatcher as each call begins.
	state atomic.Pointer[status]
	// The campaign's Phase, stored by the runner.
	phase atomic.Int32

	// The goroutines that make handler calls, for Close to recognise.
	runGoroutine, dispatchGoroutine uint64

	jitter *jitter // the random source of retry delays

	obs *observing // the Observers; nil when none

	// Owned by the runner, which runs on one goroutine at a time.
	last          notice  // the last notification sent
	highest       uint64  // the highest term seen of the resource
	highestHolder string  // the session that held the highest term
	raised        uint64  // the last floor raised after a store lost its terms
	warnedBehind  uint64  // the highest term when a leader below it was last reported
	storeRetry    backoff // consecutive failed store requests
	handlerRetry  backoff // consecutive terms given up by a failing handler

	// What Start makes, kept here rather than in objects of their own (as
	// a term is, see term): the context given to Start (see startContext),
	// the run and its dispatcher.
	startCtx context.Context
	run      runner
	disp     dispatcher
}

// startContext is the engine as a context: the one given to Start, with the
// engine as the value of handlerCtxKey, as context.WithValue would make it
// without an allocation of its own. (The engine, with its run and
// dispatcher, is 752 bytes: the runtime adds a header of 8 to an object of
// more than 512 with pointers, and one more field would take it from the
// size class of 768 bytes to that of 896.)
type startContext engine

func (c *startContext) Deadline() (time.Time, bool) { return c.startCtx.Deadline() }
func (c *startContext) Done() <-chan struct{}       { return c.startCtx.Done() }
func (c *startContext) Err() error                  { return c.startCtx.Err() }

func (c *startContext) Value(key any) any {
	if _, ok := key.(handlerCtxKey); ok {
		return (*engine)(c)
	}
	return c.startCtx.Value(key)
}

// term is one period of leadership. What a leader keeps for its term is
// in it, as far as it can be (its context, its watch of the record through
// a RecordWatcher, what its leader call told), rather than in objects of
// their own: a process that acquires many resources at once allocates the
// terms among the garbage of the acquisitions, of the same small sizes,
// and after a collection every small object that stays keeps its span of
// memory in use.
type term struct {
	number   uint64
	info     SessionInfo // the session it is held by
	ctx      context.Context
	ka       *keepalive    // the session's renewals
	ownsKA   bool          // ka renews this term's own session, not a shared one
	r        *runner       // resumes once the term has ended and its leader call has returned
	watched  chan struct{} // closed when the watch of the record returned
	events   *termEvents   // reports to the observers; nil without any
	pending  atomic.Int32  // the term's end and its call's return, not both come yet
	returned atomic.Bool   // the handler's leader call returned

	tc termContext // ctx
	rw recordWatch // the watch of the record through a RecordWatcher (watchRecord)
	st status      // what the leader call told, for IsLeader and State

	// The watch's read in flight, ended by stopWatch. (A context of the
	// watch's own, for that, would cost each leader a context, its
	// channel and its list of children.)
	readMu    sync.Mutex
	readStop  context.CancelFunc // ends the read in flight; nil between reads
	recorded  bool               // rw watches the record
	unwatched bool               // stopWatch was called: no read starts any more
	// released is set once the store has been released, and releasedCh,
	// made by a Release that waits for that, closed then.
	released   bool
	releasedCh chan struct{}
}

// cancel ends the term's context for cause.
func (t *term) cancel(cause error) { t.tc.cancel(cause) }

// termEnded resumes the run once both the end of the term and the return
// of its leader call have come.
func (t *term) termEnded() { t.r.resumeAfter(t) }

// releasedChan returns a channel closed once the store has been released,
// or nil when it has been already.
func (t *term) releasedChan() <-chan struct{} {
	t.readMu.Lock()
	defer t.readMu.Unlock()
	if t.released {
		return nil
	}
	if t.releasedCh == nil {
		t.releasedCh = make(chan struct{})
	}
	return t.releasedCh
}

// markReleased records that the store has been released.
func (t *term) markReleased() {
	t.readMu.Lock()
	defer t.readMu.Unlock()
	t.released = true
	if t.releasedCh != nil {
		close(t.releasedCh)
	}
}

// startRead makes cancel the end of the watch's read about to start. Once
// stopWatch was called, it calls cancel and returns false instead.
func (t *term) startRead(cancel context.CancelFunc) bool {
	t.readMu.Lock()
	defer t.readMu.Unlock()
	if t.unwatched {
		cancel()
		return false
	}
	t.readStop = cancel
	return true
}

// endRead ends the watch's read in flight, which has returned.
func (t *term) endRead() {
	t.readMu.Lock()
	stop := t.readStop
	t.readStop = nil
	t.readMu.Unlock()
	stop()
}

// stopWatch abandons the watch's read in flight, and every later one.
func (t *term) stopWatch() {
	t.readMu.Lock()
	t.unwatched = true
	stop, recorded := t.readStop, t.recorded
	t.readMu.Unlock()
	switch {
	case recorded:
		t.rw.stop()
	case stop != nil:
		stop()
	}
}

// end ends the term for cause: its context is cancelled and its session is
// no longer renewed, even while the handler keeps running. (A term that ends
// with its session's context stops the renewals by that.)
func (t *term) end(cause error) {
	t.cancel(cause)
	if t.ownsKA {
		t.ka.stopRenewing()
	}
}

// closedChan is a channel closed from the start.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

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
	e := &engine{
		b:      b,
		opts:   opts,
		shared: opts.Session,
		obs:    newObserving(opts.Observers, opts.Resource, opts.ID, b.Name()),
	}
	if e.shared != nil {
		e.jitter = e.shared.jitter // one source for a session's electors
	} else {
		e.jitter = newJitter()
	}
	e.storeRetry = backoff{opts: &e.opts, rng: e.jitter}
	e.handlerRetry = backoff{opts: &e.opts, rng: e.jitter}
	return e
}

// logger returns the elector's logger, which names it in every record. It
// is made for each record rather than kept: a process may hold thousands of
// electors, which log rarely.
func (e *engine) logger() *slog.Logger {
	return e.opts.Logger.With("resource", e.opts.Resource, "id", e.opts.ID, "backend", e.b.Name())
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
	if e.shared != nil && e.shared.isClosed() {
		return fmt.Errorf("election: start %q: %w", e.opts.Resource, ErrSessionClosed)
	}
	e.started = true
	// Every context a handler call gets derives from runCtx, and so names
	// this elector (see fromHandler).
	e.startCtx = ctx
	runCtx, cancel := context.WithCancel((*startContext)(e))
	e.runCtx, e.cancelRun = runCtx, cancel
	r := &e.run
	*r = runner{e: e, ctx: runCtx, d: &e.disp}
	if ctx.Done() != nil {
		// runCtx ends with ctx; the campaign on a shared session must too.
		r.unwatchStart = context.AfterFunc(ctx, e.stopRun)
	}
	e.disp = dispatcher{handler: handler, state: &e.state, e: e}
	go r.run()
	return nil
}

// stopRun ends the elector's run: its context, and the campaign on the
// shared session under way.
func (e *engine) stopRun() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopRunLocked()
}

// stopRunLocked is stopRun, with e.mu held. A campaign on the shared
// session runs under contexts of the session's (so that it ends with the
// session), which it ends here with the cause of the run's end, rather
// than through a link to the run's context: such a link would cost every
// elector a list of children on that context.
func (e *engine) stopRunLocked() {
	e.cancelRun()
	if e.campaign != nil {
		e.campaign.endLocked(context.Cause(e.runCtx))
	}
}

// setCampaign makes c the campaign under way on the shared session (nil:
// none), and ends it at once when the run has ended already.
func (e *engine) setCampaign(c *campaign, run context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.campaign = c
	if c != nil && run.Err() != nil {
		c.endLocked(context.Cause(run))
	}
}

// closingChan returns a channel closed by the first Close. It is made on
// the first call, as few electors need one.
func (e *engine) closingChan() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing == nil {
		e.closing = make(chan struct{})
	}
	return e.closing
}

// setGoroutine records the calling goroutine's ID in *id.
func (e *engine) setGoroutine(id *uint64) {
	g := goroutineID()
	e.mu.Lock()
	*id = g
	e.mu.Unlock()
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
	if !t.returned.Load() {
		return nil // the store is released once the handler returns
	}
	released := t.releasedChan()
	if released == nil {
		return nil
	}
	select {
	case <-released:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("election: release of %q: %w", e.opts.Resource, ctx.Err())
	}
}

func (e *engine) Leader(ctx context.Context) (Leadership, error) {
	l, _, err := e.WatchLeader(ctx, 0, 0)
	return l, err
}

func (e *engine) WatchLeader(ctx context.Context, after uint64, wait time.Duration) (Leadership, uint64, error) {
	e.mu.Lock()
	closed := e.closed
	e.mu.Unlock()
	if closed {
		return Leadership{}, 0, ErrClosed
	}
	if wait < 0 || wait > MaxWaitTime {
		return Leadership{}, 0, fmt.Errorf("%w: WatchLeader's wait must be from 0 to MaxWaitTime (%v), got %v", ErrInvalidOptions, MaxWaitTime, wait)
	}
	var rec Record
	var err error
	if after == 0 {
		rctx, cancel := context.WithTimeout(ctx, e.opts.RequestTimeout)
		sent := time.Now()
		rec, err = e.b.Watch(rctx, e.opts.Resource, 0, 0)
		cancel()
		if e.obs != nil {
			e.obs.request(ctx, OpRead, e.currentSession().ID, sent, err)
		}
	} else {
		if wait == 0 {
			wait = e.opts.WaitTime
		}
		rec, err = e.watch(ctx, after, wait)
	}
	if err != nil {
		return Leadership{}, 0, fmt.Errorf("election: read leader of %q: %w", e.opts.Resource, err)
	}
	return e.leaderOf(rec), rec.Revision, nil
}

// leaderOf is the Leadership of rec as Leader returns it.
func (e *engine) leaderOf(rec Record) Leadership {
	e.mu.Lock()
	info, leading := e.session, e.term != nil && e.term.ctx.Err() == nil
	e.mu.Unlock()
	l := e.leadership(rec, info)
	l.IsLeader = leading && info.ID != "" && rec.Session == info.ID
	return l
}

// Close stops the campaign once, on its first call, and finishes the
// elector (closes the backend) as soon as the campaign has ended: on this
// call when it already has, otherwise on the runner's goroutine as its
// last act, whether or not a Close is still waiting. Every call waits for
// that end.
func (e *engine) Close(ctx context.Context) error {
	if e.fromHandler(ctx) {
		return fmt.Errorf("election: close %q: %w", e.opts.Resource, ErrCloseFromHandler)
	}
	e.mu.Lock()
	finishHere := false
	if !e.closed {
		e.closed = true
		if e.closing == nil {
			e.closing = closedChan
		} else {
			close(e.closing)
		}
		e.finished = make(chan struct{})
		if e.started {
			e.stopRunLocked()
		}
		finishHere = !e.started || e.runDone
	}
	finished := e.finished
	e.mu.Unlock()
	if finishHere {
		e.finish()
	}
	select {
	case <-finished:
		return e.closeErr
	default:
	}
	select {
	case <-finished:
		return e.closeErr
	case <-ctx.Done():
		return fmt.Errorf("election: close %q: %w (is the handler ignoring its context?)", e.opts.Resource, ctx.Err())
	}
}

// finish closes the backend once the campaign has ended, and then
// e.finished. It runs once, after the first Close.
func (e *engine) finish() {
	if e.shared != nil {
		// The backend is the session's, and its owner closes it.
		e.shared.unregister(e.opts.Resource)
		close(e.finished)
		return
	}
	if c, ok := e.b.(io.Closer); ok && e.ownsBackend {
		if err := c.Close(); err != nil {
			e.closeErr = fmt.Errorf("election: close %s backend: %w", e.b.Name(), err)
		}
	}
	close(e.finished)
}

// runner is an elector's run, from Start until its campaign is over: one
// campaign after another, each on a private session of its own or on a
// claim of the shared session's current lease. Its state is here rather
// than on a goroutine's stack, so that a leader parks it for its term
// (campaign.lead) and keeps no goroutine of it; only one goroutine runs it
// at a time.
type runner struct {
	e   *engine
	ctx context.Context // the elector's: ends with Close
	d   *dispatcher
	// unwatchStart stops the end of the context given to Start from
	// stopping the run; nil when that context never ends.
	unwatchStart func() bool

	c       *campaign // the current campaign; nil between campaigns
	holdOff time.Time // carried from one campaign to the next
}

// run runs campaigns until ctx ends (or the shared session is closed), on
// this goroutine until a campaign parks a term. It is called again, on a
// new goroutine, to resume after the term (resumeAfter).
func (r *runner) run() {
	for {
		if r.c == nil {
			if r.ctx.Err() != nil || !r.begin() {
				break
			}
			if r.c == nil {
				continue
			}
		}
		if !r.c.run() {
			return // parked for a term: resumeAfter calls run again
		}
		r.c.finish()
		r.holdOff = r.c.holdOff
		if r.c.sess.use != nil {
			r.e.shared.done(r.c.sess.use)
		}
		r.c = nil
	}
	r.stopped()
}

// resumeAfter resumes the run on a new goroutine once both the end of t and
// the return of its leader call have called it.
func (r *runner) resumeAfter(t *term) {
	if t.pending.Add(-1) == 0 {
		go r.run()
	}
}

// begin starts the next campaign (r.c), with a session of its own or a
// claim on the shared one. It returns false when the elector is done: the
// shared session was closed, or ctx ended. When no campaign could start,
// it has told the handler and waited before the next attempt, and r.c is
// nil.
func (r *runner) begin() bool {
	e := r.e
	e.setPhase(PhaseConnecting)
	if e.shared != nil {
		h, stop := e.claim(r.ctx, r.d)
		if h != nil {
			r.c = e.newCampaign(r, h, h.lease, false, r.holdOff)
		}
		return !stop
	}
	created := time.Now()
	sess, err := e.newSession(r.ctx)
	if err != nil {
		if r.ctx.Err() == nil {
			e.fail(r.ctx, r.d, "create session", err)
			sleep(r.ctx, e.storeRetry.failed())
		}
		return true
	}
	ka := startKeepalive(r.ctx, e.opts, e.logger(), sess, created, e.jitter.firstRenewal(e.opts), e.obs)
	r.c = e.newCampaign(r, &sessionHandle{Claim: sess}, ka, true, r.holdOff)
	return true
}

// stopped ends the run: the handler's last calls are made, and Close,
// which may be waiting, can finish the elector.
func (r *runner) stopped() {
	e := r.e
	e.setPhase(PhaseStopped)
	if e.obs != nil {
		e.obs.stopped()
	}
	r.d.close()
	<-r.d.done
	if r.unwatchStart != nil {
		r.unwatchStart()
	}
	e.stopRun()
	e.mu.Lock()
	e.runDone = true
	closing := e.closed
	e.mu.Unlock()
	if closing {
		e.finish() // Close gave up waiting, or is still waiting
	}
}

// claim returns a claim on the shared session's current lease, once there
// is one. When it cannot, it tells the handler and returns nil, having
// waited before the next attempt, or stop when the campaign is over.
func (e *engine) claim(ctx context.Context, d *dispatcher) (h *sessionHandle, stop bool) {
	u, err := e.shared.use(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, true
		}
		// The session logs its own failures, once for all its electors;
		// each handler is told.
		e.logger().Debug("no shared session", "err", err)
		err = fmt.Errorf("election: shared session for %q: %w", e.opts.Resource, err)
		e.notify(ctx, d, Leadership{Resource: e.opts.Resource, Err: err}, errClass(err))
		if errors.Is(err, ErrSessionClosed) {
			<-ctx.Done()
			return nil, true
		}
		return nil, false // the session backs off between its attempts
	}
	c, err := u.lease.Claim(SessionParams{Resource: e.opts.Resource, ID: e.opts.ID, Value: e.opts.Value, TTL: e.opts.TTL})
	if err != nil {
		e.shared.done(u)
		e.fail(ctx, d, "claim", err)
		sleep(ctx, e.storeRetry.failed())
		return nil, false
	}
	return &sessionHandle{Claim: c, lease: u.ka, use: u}, false
}

// lead starts the term of the record the campaign acquired, and parks it:
// the leader call of the handler runs on a goroutine of its own, whose
// stack holds only that call, and no goroutine of the campaign waits for
// the term. Once the term has ended and the call has returned, whichever
// comes last, the runner resumes on a new goroutine and releases the store
// (campaign.endTerm). A leader so keeps its handler's goroutine, and
// nothing more of the campaign's: a store request grows the stack of the
// goroutine that makes it to 16–32 KB, and a goroutine waiting under the
// campaign's frames would keep 8 KB of it for the whole term.
//
// The caller, the campaign's goroutine, must return at once, touching
// nothing of the elector any more: the runner may resume before it has.
func (c *campaign) lead() {
	e := c.e
	e.setPhase(PhaseLeading)
	c.began = time.Now()
	t := e.beginTerm(c.ctx, c.sctx, c.sess, c.ka, c.ownsKA, c.rec, c.r)
	c.t = t
	// The session as the term began holds what the store told since (its
	// Fields): the campaign and the elector keep that one, and not two.
	c.info = t.info
	e.setSession(t.info)
	tw, _ := c.sess.Claim.(TurnWatcher)
	go e.callLeader(c.d, t, c.r, tw)
}

// endTerm releases the store once the parked term has ended and its leader
// call has returned, and ends the campaign: the campaign's last state.
func (c *campaign) endTerm() {
	t := c.t
	c.t = nil
	t.events.ended()
	cause := c.e.endTerm(c.ctx, c.d, c.sess, t)
	c.holdOff = c.e.afterTerm(cause, c.began)
}

// beginTerm starts the term of an acquisition of rec by sess, and reports
// it to the observers; ctx is the campaign's. r resumes once the term has
// ended and its leader call has returned.
func (e *engine) beginTerm(ctx, sctx context.Context, sess *sessionHandle, ka *keepalive, ownsKA bool, rec Record, r *runner) *term {
	info := sess.Info()
	t := &term{number: rec.Term, info: info, ka: ka, ownsKA: ownsKA, r: r}
	t.pending.Store(2) // the end of the term, and the return of the call
	// The context ends with the session's, and reports the deadline
	// itself. It ends with sctx too: on a private session sctx is the
	// session's context; on the shared one, sctx ends when the elector's
	// run does, which ends the term too (campaign.endLocked), or when the
	// shared session does. A term's context so adds nothing to sctx (a
	// list of children, a channel): see term.
	ka.initTermContext(&t.tc, t)
	t.ctx = &t.tc
	e.setTerm(t)
	if sctx.Err() != nil { // the run ended before setTerm: see endLocked
		t.cancel(context.Cause(sctx))
	}
	e.last = notice{valid: true, isLeader: true, leaderID: e.opts.ID, term: rec.Term, holder: rec.Session}
	if e.opts.Logger.Enabled(ctx, slog.LevelInfo) { // no garbage for a record nobody keeps
		e.logger().Info("became leader", "term", rec.Term, "session", info.ID)
	}
	if e.obs != nil {
		t.events = e.obs.startTerm(ctx, t.ctx, rec.Term, info.ID, e.opts.TTL)
	}
	// Watch the record in the background: it must stay ours. The term ends
	// when tctx does, without waiting for a blocked read to unwind. The read
	// itself is abandoned only once the store is released: a release ends a
	// blocking read at once, and a read cut off on the way would cost the
	// store and the client a connection at the moment of handover. A
	// backend whose shared watch can call a function (RecordWatcher)
	// watches it without a goroutine of the leader's.
	if w, ok := e.b.(RecordWatcher); ok {
		t.watched = closedChan            // nothing of the watch runs once stopWatch returned
		e.watchRecord(t, w, rec.Revision) // a function of the backend's shared watch
	} else {
		t.watched = make(chan struct{})
		go e.watchTerm(t, sctx, rec.Revision, LeaderWait(e.opts))
	}
	return t
}

// callLeader makes the leader call of t, on a goroutine of its own that r
// resumes from once the call has returned and the term has ended. The
// goroutine keeps the frames of the call for the term, and they are kept
// small: a handler that waits for its term under them holds the smallest
// stack the runtime gives a goroutine. Once the handler's earlier calls
// have returned, it ends the candidate's turn (tw, when not nil): the
// candidates the backend held back wake as the call begins, not before.
func (e *engine) callLeader(d *dispatcher, t *term, r *runner, tw TurnWatcher) {
	e.setGoroutine(&e.runGoroutine)
	stopWarning := e.warnWhileOverdue(t, t.events)
	if tw != nil {
		d.drain()
		tw.TurnTaken()
	}
	d.callHere(e.leaderCall(t))
	t.returned.Store(true)
	stopWarning()
	r.resumeAfter(t)
}

// leaderCall returns the event of t's leader call, allocated rather than
// kept in the caller's frame, and only for the call.
//
//go:noinline
func (e *engine) leaderCall(t *term) *event {
	return &event{
		ctx: t.ctx,
		l:   Leadership{Resource: e.opts.Resource, LeaderID: e.opts.ID, Value: e.opts.Value, IsLeader: true, Term: t.number, Session: t.info},
		st:  &t.st,
		onError: func(err error) {
			t.end(fmt.Errorf("%w: %w", ErrHandlerFailed, err))
		},
	}
}

// endTerm releases the store once t has ended and its leader call has
// returned, tells the handler, and returns the cause of the end.
func (e *engine) endTerm(ctx context.Context, d *dispatcher, sess *sessionHandle, t *term) error {
	defer t.cancel(nil)
	cause := context.Cause(t.ctx)
	e.setPhase(PhaseReleasing)
	if t.ownsKA {
		t.ka.halt()
	}
	e.logger().Info("term ended", "term", t.number, "cause", cause)
	e.closeSession(ctx, sess)
	t.stopWatch()
	t.markReleased()
	<-t.watched
	e.setTerm(nil)
	e.notifyStepDown(ctx, d, Leadership{Resource: e.opts.Resource, Session: t.info})
	return cause
}

// afterTerm returns the time before which this elector must not acquire
// again after a term that began at began and ended for cause: RetryInterval
// after a Release; after the handler failed, a backoff that grows with
// every term in a row given up that way (see RetryDelay), and starts again
// from RetryInterval after a term that lasted at least MaxRetryDelay.
func (e *engine) afterTerm(cause error, began time.Time) time.Time {
	switch {
	case errors.Is(cause, ErrHandlerFailed):
		if time.Since(began) >= MaxRetryDelay(e.opts) {
			e.handlerRetry.reset()
		}
		return time.Now().Add(e.handlerRetry.failed())
	case errors.Is(cause, ErrReleased):
		e.handlerRetry.reset()
		return time.Now().Add(e.opts.RetryInterval)
	}
	e.handlerRetry.reset()
	return time.Time{}
}

// saw notes the term of a record held by another session. (A record of
// this candidate's own session, as a queueing store shows before the
// acquisition, carries the term the acquisition is checked against.)
func (e *engine) saw(own SessionInfo, rec Record) {
	if rec.Session != own.ID {
		e.sawHeld(rec)
	}
}

// sawHeld notes the term of a held record.
func (e *engine) sawHeld(rec Record) {
	if rec.Term > e.highest {
		e.highest, e.highestHolder = rec.Term, rec.Session
	}
}

// behind reports whether a record held by another session carries a term
// below the highest this elector has seen, or that same term under another
// session: a term the store issued again after it lost its data.
func (e *engine) behind(rec Record) bool {
	return !rec.Free() && e.highest > 0 && (rec.Term < e.highest || rec.Term == e.highest && rec.Session != e.highestHolder)
}

// termWentBack reports whether a term just acquired is not above the
// highest term this elector has seen, as when the store lost its data (a
// rebuilt cluster, a restored backup, a flushed server) and issues terms
// from the start again. A fencing token must only grow, so the elector then
// gives the acquisition up, and never gives its handler that term. It raises
// the store's term floor above the highest term seen (TermFloorRaiser) and
// campaigns again at once: the next acquisition gets a term above it. A
// backend that cannot raise its floor, or whose next term is still low
// after a raise, is reported to the handler (Err) and retried with backoff,
// as a failing store is.
func (e *engine) termWentBack(ctx, sctx context.Context, d *dispatcher, rec Record) bool {
	if rec.Term > e.highest {
		e.raisedLast = false
		return false
	}
	if r, ok := e.b.(TermFloorRaiser); ok {
		first := !e.raisedLast
		if first {
			e.logger().Warn("the store issued a term not above one seen before, as after a loss of its data; raising its term floor and campaigning again",
				"term", rec.Term, "highest_seen", e.highest)
		}
		err := e.raiseTermFloor(sctx, r)
		if err != nil {
			if sctx.Err() == nil {
				e.fail(ctx, d, "raise term floor", err)
				sleep(sctx, e.storeRetry.failed())
			}
			return true
		}
		e.raised = e.highest
		if first {
			e.raisedLast = true
			return true
		}
	}
	err := fmt.Errorf("the store issued term %d, not above term %d seen before, and its term floor cannot be raised above it", rec.Term, e.highest)
	e.logger().Error("giving up a term below one seen before; no handler is given it", "term", rec.Term, "highest_seen", e.highest)
	e.fail(ctx, d, "acquire", err)
	sleep(sctx, e.storeRetry.failed())
	return true
}

// followBehind handles a record, held by another session, whose term is
// below one this elector has seen (see behind): the store lost its data and
// another candidate, which had not seen the higher term, leads with a term
// issued again. That leader is not announced, since no handler may be given
// a lower term than before: the handler is told that there is no leader it
// can follow. The first time for a highest term, it is logged, and the
// store's term floor raised above that term (TermFloorRaiser), so that the
// next term is above it.
func (e *engine) followBehind(ctx context.Context, d *dispatcher, own SessionInfo, rec Record) {
	if e.warnedBehind < e.highest {
		e.warnedBehind = e.highest
		e.logger().Warn("the store shows a leader with a term below one seen before, as after a loss of its data; not announcing it",
			"leader", rec.LeaderID, "term", rec.Term, "highest_seen", e.highest)
		if r, ok := e.b.(TermFloorRaiser); ok && e.raised < e.highest {
			err := e.raiseTermFloor(ctx, r)
			if err == nil {
				e.raised = e.highest
			} else {
				e.warnedBehind = 0 // try again on the next observation
				e.logger().Warn("could not raise the store's term floor", "err", err)
			}
		}
	}
	e.notify(ctx, d, Leadership{Resource: e.opts.Resource, Session: own}, "")
}

// watchTerm watches a leader's record, of revision rev, until the term
// ends, and ends the term when the record is no longer this session's. A
// blocking read returns at once on any change, so it may wait long:
// LeaderWait. Its reads run under sctx, the session's context, until
// t.stopWatch, which comes after the term, once the store is released. It
// closes t.watched when it returns. It is the whole stack of its
// goroutine, which a leader keeps for its term: the rare paths are
// functions of their own.
func (e *engine) watchTerm(t *term, sctx context.Context, rev uint64, wait time.Duration) {
	defer close(t.watched)
	retry := backoff{opts: &e.opts, rng: e.jitter}
	for t.ctx.Err() == nil {
		// e.watch, without a frame of its own
		rctx, cancel := context.WithTimeout(sctx, wait+e.opts.RequestTimeout)
		if !t.startRead(cancel) {
			return
		}
		sent := time.Now()
		r, err := e.b.Watch(rctx, e.opts.Resource, rev, wait)
		t.endRead()
		if e.obs != nil {
			e.obs.request(t.ctx, OpWatch, t.info.ID, sent, err) // not once the term has ended
		}
		switch {
		case err != nil:
			e.leaderWatchFailed(t, &retry, err)
		case r.Session != t.info.ID:
			t.lost(&r)
			return
		default:
			retry.reset()
			rev = r.Revision
		}
	}
}

// leaderWatchFailed logs a failed watch of t's record, and waits before
// the next, unless the term has ended.
func (e *engine) leaderWatchFailed(t *term, retry *backoff, err error) {
	if t.ctx.Err() == nil {
		e.logger().Warn("leader cannot watch its record", "term", t.number, "err", err)
		sleep(t.ctx, min(retry.failed(), e.opts.RenewInterval))
	}
}

// lost ends the term, whose record the store shows as r.
func (t *term) lost(r *Record) {
	t.end(fmt.Errorf("%w: the store shows %s", ErrLeadershipLost, describe(*r)))
}

// warnWhileOverdue warns while the leader call of t keeps running after
// its term ended: at the first check after the end, then once every TTL.
// It checks on a timer, every TTL from the start of the call, so that the
// end of a term costs nothing. The returned function, called once the call
// returned, stops the checks.
//
// te, when set, reports each such check as an overrun, and the call's
// return after one.
func (e *engine) warnWhileOverdue(t *term, te *termEvents) (stop func()) {
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
			e.logger().Warn("handler still running after its term ended; this elector will not campaign until it returns",
				"term", t.number, "for_at_least", now.Sub(since).Round(time.Millisecond))
			te.overrun(false)
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
		te.overrun(true)
		mu.Unlock()
	}
}

// The store requests of the engine follow, each with its deadline; each
// reports its outcome to the observers.

func (e *engine) newSession(ctx context.Context) (Session, error) {
	rctx, cancel := context.WithTimeout(ctx, e.opts.RequestTimeout)
	defer cancel()
	sent := time.Now()
	s, err := e.b.NewSession(rctx, SessionParams{Resource: e.opts.Resource, ID: e.opts.ID, Value: e.opts.Value, TTL: e.opts.TTL})
	if e.obs != nil {
		e.obs.request(ctx, OpCreateSession, "", sent, err)
	}
	return s, err
}

func (e *engine) acquire(c *campaign) (Acquisition, error) {
	if e.shared != nil {
		// The turn is waited for before the request's deadline starts.
		if err := c.awaitTurn(); err != nil {
			return Acquisition{}, err
		}
		defer e.shared.leaveAcquire()
	}
	rctx, cancel := c.requestContext(e.opts.RequestTimeout)
	defer c.requestDone(cancel)
	sent := time.Now()
	acq, err := c.sess.Acquire(rctx)
	if tw, ok := c.sess.Claim.(TurnWatcher); ok && (err != nil || acq.Record.Session != c.info.ID) {
		// The outcome is known and is not this candidate's term: the
		// candidates held back for its turn learn it now. A term ends
		// the turn as its leader call begins (callLeader).
		tw.TurnTaken()
	}
	if e.obs != nil {
		e.obs.request(c.sctx, OpAcquire, c.sess.Info().ID, sent, err)
	}
	return acq, err
}

func (e *engine) watch(ctx context.Context, after uint64, wait time.Duration) (Record, error) {
	rctx, cancel := context.WithTimeout(ctx, wait+e.opts.RequestTimeout)
	defer cancel()
	sent := time.Now()
	r, err := e.b.Watch(rctx, e.opts.Resource, after, wait)
	if e.obs != nil {
		e.obs.request(ctx, OpWatch, e.currentSession().ID, sent, err)
	}
	return r, err
}

// raiseTermFloor raises r's term floor above the highest term seen.
func (e *engine) raiseTermFloor(ctx context.Context, r TermFloorRaiser) error {
	rctx, cancel := context.WithTimeout(ctx, e.opts.RequestTimeout)
	defer cancel()
	sent := time.Now()
	err := r.RaiseTermFloor(rctx, e.opts.Resource, e.highest)
	if e.obs != nil {
		e.obs.request(ctx, OpRaiseTermFloor, e.currentSession().ID, sent, err)
	}
	return err
}

// closeSession releases and ends a session with a fresh, bounded context, so
// that a cancelled elector still releases.
func (e *engine) closeSession(ctx context.Context, s *sessionHandle) {
	s.once.Do(func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.RequestTimeout)
		defer cancel()
		sent := time.Now()
		err := s.Claim.Close(cctx)
		if e.obs != nil {
			e.obs.request(context.Background(), OpRelease, s.Info().ID, sent, err) // a release is never cancelled
		}
		switch {
		case err == nil:
		case s.lease == nil:
			// The session is no longer renewed: the store ends it, and
			// frees what it held, within its TTL.
			e.logger().Warn("could not close session", "session", s.Info().ID, "err", err)
		default:
			// The claim may still hold the resource, through a lease that
			// the other electors keep renewing: the resource would stay led
			// by nobody. End the lease for every elector on it; its Close,
			// or else its TTL, frees the resource, and the session makes a
			// new lease.
			e.logger().Warn("could not give the resource up; ending the shared session so that the store frees it", "session", s.Info().ID, "err", err)
			s.lease.cancel(fmt.Errorf("election: could not give %q up on the shared session: %w", e.opts.Resource, err))
		}
	})
}

// observe notifies the handler of a record seen as a follower.
func (e *engine) observe(ctx context.Context, d *dispatcher, own SessionInfo, rec Record) {
	if rec.Session == own.ID && !rec.Free() {
		return // this candidate is about to acquire
	}
	if e.behind(rec) {
		e.followBehind(ctx, d, own, rec)
		return
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
	class := errClass(err)
	if class == "permission" {
		e.logger().Error("store refused the elector", "step", step, "err", err)
	} else {
		e.logger().Warn("store request failed", "step", step, "err", err)
	}
	e.notify(ctx, d, Leadership{Resource: e.opts.Resource, Session: e.currentSession(), Err: err}, class)
}

// errClass is the kind of a failure, for de-duplicating notifications.
func errClass(err error) string {
	switch {
	case errors.Is(err, ErrPermissionDenied):
		return "permission"
	case errors.Is(err, ErrSessionClosed):
		return "closed"
	}
	return "unavailable"
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
	d.enqueue(event{ctx: ctx, l: l, key: n})
}

// notifyStepDown tells the handler that its term is over. Unlike other
// follower notifications, a newer one does not replace it while it waits.
func (e *engine) notifyStepDown(ctx context.Context, d *dispatcher, l Leadership) {
	n := noticeOf(l, "")
	e.last = n
	d.enqueue(event{ctx: ctx, l: l, key: n, keep: true})
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

// sessionHandle is a session, or a claim on a lease, that the engine closes
// once.
type sessionHandle struct {
	Claim
	lease *keepalive // the renewals of the shared lease of a claim; nil for a session
	use   *leaseUse  // the use of the shared lease of a claim; nil for a session
	once  sync.Once
}
