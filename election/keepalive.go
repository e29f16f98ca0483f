package election

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// keepalive renews one session every RenewInterval, the first time after
// first (see jitter.firstRenewal), and enforces its local
// step-down deadline: TTL - StepDownMargin(TTL) after the start of the last
// successful renewal. When the deadline passes, or the store reports the
// session lost, it cancels ctx, and with it the current term's context. The
// term's context also reads the deadline itself (see termContext), so that
// it reports the end of the term before the timer has run.
type keepalive struct {
	o     Options       // TTL, RenewInterval, RetryInterval, RequestTimeout
	first time.Duration // from the session's creation to its first renewal
	log   *slog.Logger
	sess  renewer
	obs   *observing // reports each renewal; nil when none

	ctx    context.Context
	cancel context.CancelCauseFunc

	renewCtx    context.Context // ends at halt, abandoning a renewal in flight
	renewCancel context.CancelFunc

	stepDown *stepDown // the deadline, for the term's context; moved under mu
	// expiredCause is expired, made once for the terms' contexts rather
	// than for each.
	expiredCause func() error

	mu       sync.Mutex
	deadline time.Time
	timer    *time.Timer
	halted   bool          // no renewal starts any more
	renewing chan struct{} // set while a renewal is in flight; closed when it ends

	done chan struct{} // closed when the renewal loop returned

	// The contexts of the terms on the session, which derive from ctx:
	// endTerms, a function of ctx's, tells them once it has ended. (A
	// function of each term's on ctx would cost every leader one.)
	termsMu   sync.Mutex
	terms     *termContext // the first of a list through termContext.prev and next
	termsDone bool         // ctx has ended: endTerms took the list
}

// renewer is what a keepalive renews: a Session, or a Lease.
type renewer interface {
	Info() SessionInfo
	Renew(ctx context.Context) error
}

// startKeepalive renews sess with o's intervals, logging to log and
// reporting to obs (which may be nil). validFrom is when the request that
// created sess was sent; the first renewal comes first from now.
func startKeepalive(parent context.Context, o Options, log *slog.Logger, sess renewer, validFrom time.Time, first time.Duration, obs *observing) *keepalive {
	ctx, cancel := context.WithCancelCause(parent)
	deadline := validFrom.Add(o.TTL - StepDownMargin(o.TTL))
	k := &keepalive{
		o:        o,
		first:    first,
		log:      log,
		sess:     sess,
		obs:      obs,
		ctx:      ctx,
		cancel:   cancel,
		stepDown: newStepDown(deadline),
		deadline: deadline,
		done:     make(chan struct{}),
	}
	k.expiredCause = k.expired
	k.renewCtx, k.renewCancel = context.WithCancel(ctx)
	context.AfterFunc(ctx, k.endTerms)
	k.mu.Lock()
	k.timer = time.AfterFunc(time.Until(k.deadline), k.expire)
	k.mu.Unlock()
	go k.loop()
	return k
}

// renewed moves the deadline for a renewal that started at sent.
func (k *keepalive) renewed(sent time.Time) {
	d := sent.Add(k.o.TTL - StepDownMargin(k.o.TTL))
	k.mu.Lock()
	if d.After(k.deadline) {
		k.deadline = d
		k.stepDown.set(d)
	}
	k.mu.Unlock()
}

// initTermContext makes c the context of a term of this session: it ends
// with the session's context, and, at the latest, as soon as it is asked
// after the step-down deadline. onEnd is told once it has ended.
func (k *keepalive) initTermContext(c *termContext, onEnd termEnder) {
	c.Context, c.cancelCtx = context.WithCancelCause(k.ctx)
	c.deadline, c.cause, c.onEnd = k.stepDown, k.expiredCause, onEnd
	k.termsMu.Lock()
	if k.termsDone {
		k.termsMu.Unlock()
		c.parentEnded() // c was born ended
		return
	}
	c.k, c.next = k, k.terms
	if c.next != nil {
		c.next.prev = c
	}
	k.terms = c
	k.termsMu.Unlock()
}

// removeTerm takes c, which has ended, off the list of terms, unless
// endTerms took it.
func (k *keepalive) removeTerm(c *termContext) {
	k.termsMu.Lock()
	defer k.termsMu.Unlock()
	if k.termsDone {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else if k.terms == c {
		k.terms = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	c.prev, c.next = nil, nil
}

// endTerms tells every term on the session that its context has ended,
// once the session's context has.
func (k *keepalive) endTerms() {
	k.termsMu.Lock()
	k.termsDone = true
	first := k.terms
	k.terms = nil
	k.termsMu.Unlock()
	for c := first; c != nil; {
		next := c.next
		c.prev, c.next = nil, nil
		c.parentEnded()
		c = next
	}
}

// expired is the cause of the end of a session at its step-down deadline.
func (k *keepalive) expired() error {
	return fmt.Errorf("%w: no renewal succeeded within %v of TTL %v", ErrLeaseExpired,
		k.o.TTL-StepDownMargin(k.o.TTL), k.o.TTL)
}

// expire runs at the deadline; it re-arms itself if a renewal moved it.
func (k *keepalive) expire() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if wait := time.Until(k.deadline); wait > 0 {
		k.timer.Reset(wait)
		return
	}
	k.cancel(k.expired())
}

func (k *keepalive) loop() {
	defer close(k.done)
	o := k.o
	t := time.NewTimer(k.first)
	defer t.Stop()
	for {
		select {
		case <-k.ctx.Done():
			return
		case <-t.C:
		}
		inflight, deadline, ok := k.startRenewal()
		if !ok {
			return
		}
		sent := time.Now()
		rctx, cancel := context.WithTimeout(k.renewCtx, o.RequestTimeout)
		err := k.sess.Renew(rctx)
		cancel()
		k.mu.Lock()
		k.renewing = nil
		k.mu.Unlock()
		close(inflight)
		if k.obs != nil && k.renewCtx.Err() == nil {
			// A renewal abandoned at halt is no outcome.
			id := k.sess.Info().ID
			k.obs.renewed(id, sent, deadline, err)
			k.obs.request(k.renewCtx, OpRenew, id, sent, err)
		}
		switch {
		case err == nil:
			k.renewed(sent)
			t.Reset(o.RenewInterval)
		case errors.Is(err, ErrSessionLost):
			k.cancel(err)
			return
		case k.renewCtx.Err() != nil:
			return
		default:
			k.log.Warn("session renewal failed", "session", k.sess.Info().ID, "err", err)
			t.Reset(min(o.RetryInterval, o.RenewInterval))
		}
	}
}

// startRenewal marks a renewal in flight, unless renewals were stopped,
// and returns the step-down deadline as it stands.
func (k *keepalive) startRenewal() (inflight chan struct{}, deadline time.Time, ok bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.halted {
		return nil, time.Time{}, false
	}
	k.renewing = make(chan struct{})
	return k.renewing, k.deadline, true
}

// stopRenewing stops renewing and abandons a renewal in flight, without
// waiting, and without waking the renewal loop, which returns when its
// timer next fires or at stop. The deadline still ends ctx when it passes.
// It may be called from any goroutine.
func (k *keepalive) stopRenewing() {
	k.mu.Lock()
	k.halted = true
	k.mu.Unlock()
	k.renewCancel()
}

// halt stops renewing and waits for a renewal in flight to end, so that no
// renewal overlaps the session's Close.
func (k *keepalive) halt() {
	k.stopRenewing()
	k.mu.Lock()
	inflight := k.renewing
	k.mu.Unlock()
	if inflight != nil {
		<-inflight
	}
}

// stop stops renewing and the deadline, and waits for the renewal loop.
func (k *keepalive) stop() {
	k.halt()
	k.mu.Lock()
	k.timer.Stop()
	k.mu.Unlock()
	k.cancel(context.Canceled)
	<-k.done
}
