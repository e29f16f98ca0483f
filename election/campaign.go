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
//	leading      this session holds the record lead the term      → ended
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
	ctx    context.Context // the elector's
	sctx   context.Context // the session's: ends with ctx, and when the session ends
	d      *dispatcher
	sess   *sessionHandle
	ka     *keepalive
	ownsKA bool
	info   SessionInfo

	rec     Record    // the record last seen; Revision 0: not read yet
	tried   bool      // Acquire was called: a queueing store (etcd) has this candidate in line
	holdOff time.Time // before it, this candidate leaves others the first chance
}

// campaign runs one session, renewed by ka (which it stops when it owns
// it), through the states above, and leads at most one term. It returns
// the time before which the next session must not acquire.
func (e *engine) campaign(ctx context.Context, d *dispatcher, sess *sessionHandle, ka *keepalive, ownsKA bool, holdOff time.Time) time.Time {
	c := &campaign{e: e, ctx: ctx, sctx: ka.ctx, d: d, sess: sess, ka: ka, ownsKA: ownsKA, info: sess.Info(), holdOff: holdOff}
	e.setSession(c.info)
	defer func() {
		if ownsKA {
			ka.stop()
		}
		e.closeSession(ctx, sess)
		e.setSession(SessionInfo{})
	}()
	if !ownsKA {
		// The shared session's renewals outlive this campaign, which ends
		// with ctx too.
		sctx, cancel := context.WithCancelCause(ka.ctx)
		stop := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
		defer func() {
			stop()
			cancel(nil)
		}()
		c.sctx = sctx
	}
	for st := c.next(); st != stateEnded; {
		e.setPhase(c.phase(st))
		switch st {
		case stateFollowing:
			st = c.watch(e.opts.WaitTime)
		case stateHoldingOff:
			st = c.watch(min(time.Until(c.holdOff), e.opts.WaitTime))
		case stateAcquiring:
			st = c.acquire()
		}
	}
	return c.holdOff
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
		c.e.log.Warn("session ended", "session", c.info.ID, "cause", context.Cause(c.sctx))
	default: // the shared session logs it, once
		c.e.log.Debug("shared session ended", "session", c.info.ID, "cause", context.Cause(c.sctx))
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
			sleep(c.sctx, retry)
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
	acq, err := e.acquire(c.sctx, c.sess)
	if err != nil {
		switch {
		case c.sctx.Err() != nil:
		case errors.Is(err, ErrSessionLost):
			if c.ownsKA {
				e.log.Warn("session lost while acquiring", "session", c.info.ID, "err", err)
			} else {
				// The store session is the shared one: it is lost for
				// every elector on it, and the session makes a new one
				// now rather than at its next renewal (and logs it once).
				e.log.Debug("shared session lost while acquiring", "session", c.info.ID, "err", err)
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
			sleep(c.sctx, e.storeRetry.failed())
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
		e.setPhase(PhaseLeading)
		began := time.Now()
		cause := e.lead(c.ctx, c.sctx, c.d, c.sess, c.ka, c.ownsKA, c.rec)
		c.holdOff = e.afterTerm(cause, began)
		return stateEnded
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
