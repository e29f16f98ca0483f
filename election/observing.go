package election

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// observing is the Observers of an elector or of a shared session, with
// what names their events. An elector or session without observers has
// none (nil), and every emitting path starts with that nil check, so that
// it costs nothing.
type observing struct {
	list []*Observer
	src  Source // Resource, ID and Backend; Term and Session are per event

	term     atomic.Uint64 // the term being led; 0 when none
	failures atomic.Int64  // failed store requests since the last success
}

// newObserving returns the observing of list, or nil for an empty list.
func newObserving(list []*Observer, resource, id, backend string) *observing {
	if len(list) == 0 {
		return nil
	}
	return &observing{list: append([]*Observer(nil), list...), src: Source{Resource: resource, ID: id, Backend: backend}}
}

// source is the Source of an event of session, during the current term.
func (o *observing) source(session string) Source {
	s := o.src
	s.Term = o.term.Load()
	s.Session = session
	return s
}

// request reports the outcome of a store request of kind op that began at
// sent, on session: a failure (StoreFailed), or a success after failures
// (StoreRecovered). A request ended by its caller's context (the elector or
// term stopping) is neither.
func (o *observing) request(ctx context.Context, op Op, session string, sent time.Time, err error) {
	if err == nil {
		if n := o.failures.Swap(0); n > 0 {
			ev := StoreRecovery{Source: o.source(session), Op: op, Failures: int(n)}
			for _, ob := range o.list {
				if ob.StoreRecovered != nil {
					ob.StoreRecovered(ev)
				}
			}
		}
		return
	}
	if ctx.Err() != nil {
		return
	}
	o.failures.Add(1)
	ev := StoreFailure{Source: o.source(session), Op: op, Err: err, Latency: time.Since(sent)}
	for _, ob := range o.list {
		if ob.StoreFailed != nil {
			ob.StoreFailed(ev)
		}
	}
}

// renewed reports a renewal of session, sent at sent, whose step-down
// deadline was deadline when it was sent, and which failed with err (nil
// on success).
func (o *observing) renewed(session string, sent, deadline time.Time, err error) {
	now := time.Now()
	ev := Renewal{Source: o.source(session), Latency: now.Sub(sent), Err: err, Margin: deadline.Sub(now)}
	for _, ob := range o.list {
		if ob.Renewed != nil {
			ob.Renewed(ev)
		}
	}
}

// termEvents reports the events of one term: its start, its end (once, as
// soon as its context ends) and a handler that overruns it.
type termEvents struct {
	o     *observing
	src   Source
	ctx   context.Context // the elector's: ended when it stops
	tctx  context.Context // the term's
	began time.Time
	stop  func() bool // stops the report of the end at the context's end

	once    sync.Once
	endedAt time.Time // set once the end was reported
	overran bool      // an overrun was reported; under the warning's lock
}

// startTerm reports the start of term number on session, which ends with
// tctx, of an elector whose context is ctx, and returns the term's events.
func (o *observing) startTerm(ctx, tctx context.Context, number uint64, session string, ttl time.Duration) *termEvents {
	o.term.Store(number)
	te := &termEvents{o: o, src: o.source(session), ctx: ctx, tctx: tctx, began: time.Now()}
	ev := TermStart{Source: te.src, TTL: ttl}
	for _, ob := range o.list {
		if ob.TermStarted != nil {
			ob.TermStarted(ev)
		}
	}
	te.stop = context.AfterFunc(tctx, te.ended)
	return te
}

// ended reports the end of the term, once: from the goroutine that ran
// when its context ended, or from whichever path sees the end first.
func (te *termEvents) ended() {
	if te == nil {
		return
	}
	te.once.Do(func() {
		now := time.Now()
		te.endedAt = now
		cause := context.Cause(te.tctx)
		te.o.term.CompareAndSwap(te.src.Term, 0)
		ev := TermEnd{Source: te.src, Cause: causeOf(cause, te.ctx.Err() != nil), Err: cause, Duration: now.Sub(te.began)}
		for _, ob := range te.o.list {
			if ob.TermEnded != nil {
				ob.TermEnded(ev)
			}
		}
	})
}

// overrun reports a leader call still running after the term ended, or,
// with returned, one that returned after such a report. Its caller
// serialises the calls.
func (te *termEvents) overrun(returned bool) {
	if te == nil || returned && !te.overran {
		return
	}
	te.ended() // the end is reported before any overrun
	te.overran = true
	ev := HandlerOverrun{Source: te.src, Overrun: time.Since(te.endedAt), Returned: returned}
	for _, ob := range te.o.list {
		if ob.HandlerOverran != nil {
			ob.HandlerOverran(ev)
		}
	}
}
