package election

import (
	"sync"
	"time"
)

// recordWatch is a leader's watch of its record through a RecordWatcher:
// a function the backend's shared watch calls, which ends the term when
// the record is no longer the term's session's, instead of a goroutine
// waiting in Backend.Watch (watchTerm). Like watchTerm, it reports each
// outcome to the observers, logs a failed watch and watches again after a
// backoff, and keeps watching until t.stopWatch, which comes once the
// store is released.
type recordWatch struct {
	e *engine
	t *term
	w RecordWatcher

	// startMu is held while a watch begins, so that stop waits for one
	// begun by the retry timer.
	startMu sync.Mutex

	mu      sync.Mutex
	stopped bool        // stop was called: no watch begins any more
	rev     uint64      // the revision last seen
	gen     uint64      // counts the watches begun, and ended by a failure
	cancel  func()      // ends the current watch; nil when none
	timer   *time.Timer // begins the next watch after a failure; nil when none
	retry   backoff
}

// watchRecord watches t's record, of revision rev, through w, until
// t.stopWatch. t.watched is closed from the start: once stopWatch has returned,
// nothing of this watch runs any more.
func (e *engine) watchRecord(t *term, w RecordWatcher, rev uint64) {
	rw := &t.rw // in the term: see term
	rw.e, rw.t, rw.w, rw.rev, rw.retry = e, t, w, rev, backoff{opts: &e.opts, rng: e.jitter}
	t.readMu.Lock()
	t.recorded = true
	t.readMu.Unlock()
	rw.start()
}

// start begins a watch from the revision last seen, unless stop was
// called.
func (rw *recordWatch) start() {
	rw.startMu.Lock()
	defer rw.startMu.Unlock()
	rw.mu.Lock()
	if rw.stopped {
		rw.mu.Unlock()
		return
	}
	rw.gen++
	gen, after := rw.gen, rw.rev
	rw.timer = nil
	rw.mu.Unlock()
	// changed may run before WatchRecord returns: rw.mu is not held.
	cancel := rw.w.WatchRecord(rw.e.opts.Resource, after, rw.changed)
	rw.mu.Lock()
	keep := !rw.stopped && rw.gen == gen // neither stopped nor failed meanwhile
	if keep {
		rw.cancel = cancel
	}
	rw.mu.Unlock()
	if !keep {
		cancel()
		return
	}
	// A watch the backend took without failing is the watch working
	// again after failures, if there were any.
	if t := rw.t; rw.e.obs != nil {
		rw.e.obs.request(t.ctx, OpWatch, t.info.ID, time.Now(), nil)
	}
}

// changed handles what the watch reports: r, or its failure err.
func (rw *recordWatch) changed(r Record, err error) {
	e, t := rw.e, rw.t
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.stopped {
		return
	}
	if e.obs != nil {
		// A failure is reported as it happens: the watch itself has no
		// latency to report.
		e.obs.request(t.ctx, OpWatch, t.info.ID, time.Now(), err) // not once the term has ended
	}
	switch {
	case err != nil:
		rw.gen++ // the failure ended the watch
		rw.cancel = nil
		if t.ctx.Err() == nil {
			e.logger().Warn("leader cannot watch its record", "term", t.number, "err", err)
			rw.timer = time.AfterFunc(min(rw.retry.failed(), e.opts.RenewInterval), rw.start)
		}
	case r.Session != t.info.ID:
		t.lost(&r)
	default:
		rw.retry.reset()
		rw.rev = r.Revision
	}
}

// stop ends the watch, and waits for a watch being begun. Once it has
// returned, changed does nothing and start begins nothing.
func (rw *recordWatch) stop() {
	rw.mu.Lock()
	rw.stopped = true
	timer := rw.timer
	rw.mu.Unlock()
	if timer != nil {
		timer.Stop()
	}
	rw.startMu.Lock() // a watch begun by the timer has its cancel set then
	rw.mu.Lock()
	cancel := rw.cancel
	rw.cancel = nil
	rw.mu.Unlock()
	rw.startMu.Unlock()
	if cancel != nil {
		cancel()
	}
}
