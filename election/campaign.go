package election

import (
	"context"
	"errors"
	"time"
)

// The campaign of one session is a state machine. Every state is one step
// of the campaign, a method of campaign below that does the step's store
// request and returns the next state; next chooses it from what the
// campaign knows of the record. A term's own states, leading and
// releasing, are in lead, which runs a whole term.
//
//	following    another candidate leads       watch the record   → next
//	holding off  free, but others go first     watch the record   → next
//	acquiring    free, or not known yet        acquire            → leading, next, or ended
//	leading      this session holds the record start the term     → parked until it ends → ended
//	ended        the session ended, or the term did
//
// next: the session ended → ended; another candidate leads (as known after
// an acquisition, which places a candidate in a queueing store's line) →
// following; a hold-off not yet over → holding off; else → acquiring.
type campaignState int

const (
	stateFollowing campaignState = iota
	stateHoldingOff
	stateAcquiring
	stateLeading
	stateEnded
)

// phase is the Phase a campaign state shows.
func (s campaignState) phase() Phase {
	switch s {
	case stateFollowing:
		return PhaseFollowing
	case stateHoldingOff:
		return PhaseHoldingOff
	case stateLeading:
		return PhaseLeading
	case stateEnded:
		return PhaseConnecting
	}
	return PhaseAcquiring
}

// campaign is one session's campaign for the resource.
type campaign struct {
	e      *engine
	r      *runner         // the elector's run, which a parked term resumes
	ctx    context.Context // the elector's
	sctx   context.Context // the session's: ends with ctx, and when the session ends
	d      *dispatcher
	sess   *sessionHandle
	ka     *keepalive
	ownsKA bool
	info   SessionInfo
	stop   context.CancelCauseFunc // ends sctx of a shared session; nil for a private one
	// reqStop ends the request in flight on the shared session (see
	// requestContext); nil when none. Under e.mu.
	reqStop context.CancelFunc

	rec     Record    // the record last seen; Revision 0: not read yet
	tried   bool      // Acquire was called: a queueing store (etcd) has this candidate in line
	holdOff time.Time // before it, this candidate leaves others the first chance

	t     *term     // the term led, from its start until it was ended
	began time.Time // when t began
}

// newCampaign begins a campaign of one session, renewed by ka (which the
// campaign stops when it owns it); holdOff is carried over from the last
// one.
func (e *engine) newCampaign(r *runner, sess *sessionHandle, ka *keepalive, ownsKA bool, holdOff time.Time) *campaign {
	c := &campaign{e: e, r: r, ctx: r.ctx, sctx: ka.ctx, d: r.d, sess: sess, ka: ka, ownsKA: ownsKA, info: sess.Info(), holdOff: holdOff}
	e.setSession(c.info)
	if !ownsKA {
		// The shared session's renewals outlive this campaign, which ends
		// with ctx too: the elector ends it when its run ends (see
		// engine.stopRunLocked).
		sctx, cancel := context.WithCancelCause(ka.ctx)
		c.sctx = sctx
		c.stop = cancel
		e.setCampaign(c, c.ctx)
	}
	return c
}

// endLocked ends the campaign on the shared session for cause, as the
// elector's run ends: sctx, the request in flight and the term, none of
// whose contexts derives from sctx (see requestContext, engine.beginTerm).
// e.mu is held.
func (c *campaign) endLocked(cause error) {
	c.stop(cause)
	if c.reqStop != nil {
		c.reqStop()
	}
	if t := c.e.term; t != nil {
		t.cancel(cause)
	}
}

// requestContext returns the context of a request of the campaign, which
// ends with sctx, or after timeout (never if it is 0), and its cancel
// function, which requestDone calls. On the shared session it derives from the session's
// context rather than from sctx, and endLocked ends it: a child would cost
// sctx a list of children and a channel, which it would keep for the term.
func (c *campaign) requestContext(timeout time.Duration) (context.Context, context.CancelFunc) {
	if c.stop == nil {
		return context.WithTimeout(c.sctx, timeout)
	}
	var (
		rctx   context.Context
		cancel context.CancelFunc
	)
	if timeout == 0 {
		rctx, cancel = context.WithCancel(c.ka.ctx)
	} else {
		rctx, cancel = context.WithTimeout(c.ka.ctx, timeout)
	}
	c.e.mu.Lock()
	if c.sctx.Err() != nil {
		cancel()
	} else {
		c.reqStop = cancel
	}
	c.e.mu.Unlock()
	return rctx, cancel
}

// sleep waits for d, or until sctx ends. On the shared session it waits
// on a context of requestContext's, for the same reason.
func (c *campaign) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	if c.stop == nil {
		sleep(c.sctx, d)
		return
	}
	ctx, cancel := c.requestContext(d)
	<-ctx.Done()
	c.requestDone(cancel)
}

// awaitTurn waits for the campaign's turn to acquire on the shared
// session (see AcquireLimiter); the caller then ends the turn with
// leaveAcquire. If the campaign ends first, it returns why: the cause of
// the end of the context it waited on, a context of requestContext's, for
// the same reason as sleep.
func (c *campaign) awaitTurn() error {
	s := c.e.shared
	if s.gate == nil {
		return nil
	}
	select {
	case s.gate <- struct{}{}:
		return nil
	default:
	}
	ctx, cancel := c.requestContext(0)
	defer c.requestDone(cancel)
	select {
	case s.gate <- struct{}{}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// requestDone ends a request of requestContext, which has returned.
func (c *campaign) requestDone(cancel context.CancelFunc) {
	cancel()
	if c.stop != nil {
		c.e.mu.Lock()
		c.reqStop = nil
		c.e.mu.Unlock()
	}
}

// run takes the campaign through the states above until it ends, and
// returns true, or until it leads, and returns false: the term is then
// parked, and the campaign's goroutine has nothing left to do. Once the
// term has ended, the runner calls run again, on a new goroutine, to end
// the campaign.
func (c *campaign) run() (ended bool) {
	if c.t != nil {
		c.endTerm()
		return true
	}
	for st := c.next(); st != stateEnded; {
		c.e.setPhase(c.phase(st))
		switch st {
		case stateFollowing:
			st = c.watch(c.e.opts.WaitTime)
		case stateHoldingOff:
			st = c.watch(min(time.Until(c.holdOff), c.e.opts.WaitTime))
		case stateAcquiring:
			st = c.acquire()
		case stateLeading:
			c.lead()
			return false
		}
	}
	return true
}

// finish ends the campaign: its session is released and closed (a shared
// session's claim on it only).
func (c *campaign) finish() {
	if c.stop != nil {
		c.e.setCampaign(nil, c.ctx)
		c.stop(nil)
	}
	if c.ownsKA {
		c.ka.stop()
	}
	c.e.closeSession(c.ctx, c.sess)
	c.e.setSession(SessionInfo{})
}

// phase is the Phase the campaign shows in state st: holding off shows as
// following while another candidate leads.
func (c *campaign) phase(st campaignState) Phase {
	if st == stateHoldingOff && c.rec.Revision != 0 && !c.rec.Free() && c.rec.Session != c.info.ID {
		return PhaseFollowing
	}
	return st.phase()
}

// next is the state the campaign goes to from what it knows.
func (c *campaign) next() campaignState {
	switch {
	case c.sctx.Err() != nil:
		c.ended()
		return stateEnded
	case c.tried && c.rec.Revision != 0 && !c.rec.Free() && c.rec.Session != c.info.ID:
		return stateFollowing
	case time.Until(c.holdOff) > 0:
		return stateHoldingOff
	}
	return stateAcquiring
}

// ended logs the end of the session, unless the elector is stopping.
func (c *campaign) ended() {
	switch {
	case c.ctx.Err() != nil:
	case c.ownsKA:
		c.e.logger().Warn("session ended", "session", c.info.ID, "cause", context.Cause(c.sctx))
	default: // the shared session logs it, once
		c.e.logger().Debug("shared session ended", "session", c.info.ID, "cause", context.Cause(c.sctx))
	}
}

// watch waits up to wait for the record to change (or reads it, when it
// was not read yet), and tells the handler what it shows: the state of
// following and of holding off.
func (c *campaign) watch(wait time.Duration) campaignState {
	e := c.e
	r, err := e.watchTurn(c.sctx, c.sess.Claim, c.rec.Revision, wait)
	if err != nil {
		if c.sctx.Err() == nil {
			e.fail(c.ctx, c.d, "watch leader", err)
			retry := e.storeRetry.failed()
			if holding := time.Until(c.holdOff); holding > 0 {
				retry = min(retry, holding)
			}
			c.sleep(retry)
		}
		return c.next()
	}
	e.storeRetry.reset()
	c.rec = r
	e.saw(c.info, r)
	e.observeUnlessTaking(c.ctx, c.d, c.info, r, c.holdOff)
	return c.next()
}

// acquire tries to acquire the record, and leads the term if it did.
func (c *campaign) acquire() campaignState {
	e := c.e
	sent := time.Now()
	c.tried = true
	acq, err := e.acquire(c)
	if err != nil {
		switch {
		case c.sctx.Err() != nil:
		case errors.Is(err, ErrSessionLost):
			if c.ownsKA {
				e.logger().Warn("session lost while acquiring", "session", c.info.ID, "err", err)
			} else {
				// The store session is the shared one: it is lost for
				// every elector on it, and the session makes a new one
				// now rather than at its next renewal (and logs it once).
				e.logger().Debug("shared session lost while acquiring", "session", c.info.ID, "err", err)
				c.ka.cancel(err)
			}
			// A new session at once, the first time; a store that
			// keeps losing them is retried with backoff.
			if wait := e.storeRetry.failed(); e.storeRetry.fails > 1 {
				sleep(c.ctx, wait)
			}
			return stateEnded
		default:
			e.fail(c.ctx, c.d, "acquire", err)
			c.rec = Record{}
			c.sleep(e.storeRetry.failed())
		}
		return c.next()
	}
	e.storeRetry.reset()
	c.rec = acq.Record
	if c.rec.Session == c.info.ID {
		if acq.Renewed && c.ownsKA {
			c.ka.renewed(sent)
		}
		if e.termWentBack(c.ctx, c.sctx, c.d, c.rec) {
			return stateEnded // the session's Close releases the record
		}
		e.sawHeld(c.rec)
		return stateLeading
	}
	e.saw(c.info, c.rec)
	e.observe(c.ctx, c.d, c.info, c.rec)
	if c.rec.Free() {
		wait := acq.RetryAfter
		if wait <= 0 {
			wait = e.opts.RetryInterval
		}
		c.holdOff = time.Now().Add(wait)
	}
	return c.next()
}
