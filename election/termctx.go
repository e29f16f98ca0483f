package election

import (
	"context"
	"sync/atomic"
	"time"
)

// stepDown is a session's step-down deadline, readable without a lock. It
// is kept as an offset on the monotonic clock from base, so that a change
// of the wall clock does not move it. Only the keepalive moves it, forward.
type stepDown struct {
	base time.Time    // a reading of the monotonic clock
	at   atomic.Int64 // the deadline, in nanoseconds after base
}

func newStepDown(deadline time.Time) *stepDown {
	s := &stepDown{base: time.Now()}
	s.set(deadline)
	return s
}

// set moves the deadline to t.
func (s *stepDown) set(t time.Time) { s.at.Store(int64(t.Sub(s.base))) }

// time returns the deadline as it stands, on the monotonic clock of base.
func (s *stepDown) time() time.Time { return s.base.Add(time.Duration(s.at.Load())) }

// passed reports whether the deadline is not after now.
func (s *stepDown) passed(now time.Time) bool {
	return now.Sub(s.base) >= time.Duration(s.at.Load())
}

// termContext is the context of a term. Its Err, Done and Value read the
// clock against the step-down deadline, and when they find it passed they
// end the term at once, with cause, before answering. So the end of a term
// is seen by the goroutine that asks, synchronously, even when the process
// was stopped past its deadline (a long GC pause, a frozen VM, SIGSTOP) and
// the timer that enforces the deadline has not run yet since the resume.
//
// The check is one atomic load and one reading of the clock. Contexts
// derived from a term context with context.WithCancel, WithTimeout or
// AfterFunc are cancelled with it (with the same cause); they see the
// deadline once the term context itself was asked or its timer ran, so a
// handler checks the term's own context right before each write. Contexts
// made with context.WithValue ask it on every Err.
type termContext struct {
	context.Context // a context.WithCancelCause of the session's context
	cancelCtx       context.CancelCauseFunc
	deadline        *stepDown
	cause           func() error // why the term ends at the deadline

	// onEnd, when set, is told once the context has ended, whichever way,
	// and never before: at once when it is cancelled through cancel (or at
	// its deadline), on the goroutine that ends the session's context when
	// that ends it.
	onEnd termEnder
	ended atomic.Bool // onEnd was told, or is being told

	// k is the keepalive of the term's session, whose list of terms
	// (through prev and next, under its termsMu) tells onEnd when the
	// session's context ends (see keepalive.initTermContext).
	k          *keepalive
	prev, next *termContext
}

// termEnder is told that a term's context has ended. (An interface rather
// than a function, so that a term, which keeps its context in itself, is
// told without a closure of its own.)
type termEnder interface{ termEnded() }

// parentEnded calls onEnd once the end of the session's context has ended
// the term's too. The session's context ends its children one after the
// other, and runs keepalive.endTerms among them, so the term's context may
// not have ended yet when this runs: onEnd must never run while the term
// still looks alive to its handler.
func (c *termContext) parentEnded() {
	<-c.Context.Done()
	c.end()
}

// cancel ends the term for cause (see context.CancelCauseFunc).
func (c *termContext) cancel(cause error) {
	c.cancelCtx(cause)
	if c.onEnd != nil && !c.ended.Load() {
		if c.k != nil {
			c.k.removeTerm(c)
		}
		c.end()
	}
}

// end tells onEnd, once.
func (c *termContext) end() {
	if c.ended.CompareAndSwap(false, true) {
		c.onEnd.termEnded()
	}
}

// check ends the term if its deadline has passed.
func (c *termContext) check() {
	if c.deadline.passed(time.Now()) {
		c.cancel(c.cause())
	}
}

// Err returns the term's end, checking the deadline first.
func (c *termContext) Err() error {
	c.check()
	return c.Context.Err()
}

// Done returns a channel that is closed when the term ends; it is closed
// already if the deadline has passed.
func (c *termContext) Done() <-chan struct{} {
	c.check()
	return c.Context.Done()
}

// Value checks the deadline first, so that context.Cause, which reads the
// cause through Value, reports the end of a term whose deadline has passed.
// It answers deadlineKey with the term's step-down deadline (see
// TermDeadline).
func (c *termContext) Value(key any) any {
	c.check()
	if key == (deadlineKey{}) {
		return c.deadline
	}
	return c.Context.Value(key)
}

// deadlineKey is the key through which TermDeadline asks a term's context
// for its step-down deadline.
type deadlineKey struct{}

// TermDeadline returns the step-down deadline of the term whose context is
// ctx, or that ctx derives from, as it stands: the term ends at it unless a
// renewal of its session moves it on first, and the store keeps the
// leadership at least StepDownMargin(TTL) past it. ok is false if ctx
// belongs to no term.
//
// It is not ctx.Deadline, which a term's context leaves unset: a context's
// deadline never moves, and this one moves forward with every renewal. A
// term whose deadline has passed has ended, or is ended by the next Err of
// its context. What a leader starts outside the process may use it to know
// how long it could keep acting without hearing from the leader: until the
// deadline plus the margin at most, the moment another candidate may lead.
func TermDeadline(ctx context.Context) (deadline time.Time, ok bool) {
	s, ok := ctx.Value(deadlineKey{}).(*stepDown)
	if !ok {
		return time.Time{}, false
	}
	return s.time(), true
}
