package election

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// event is one call of the handler.
type event struct {
	ctx     context.Context
	l       Leadership
	done    chan struct{}   // closed when the call returned; may be nil
	onError func(err error) // called with the call's error before done; may be nil
	st      *status         // where the call is recorded, unused until then; nil: a new one
	fence   chan struct{}   // set for no call: closed when the loop reaches it
	key     notice          // what the call tells, for a follower notification
	keep    bool            // a newer notification does not replace this one
}

// replaceable reports whether ev is a follower notification that a newer
// one may replace while it waits.
func (ev event) replaceable() bool {
	return ev.fence == nil && ev.done == nil && ev.onError == nil && !ev.keep
}

// dispatcher calls the handler one event at a time, in order. Follower
// notifications are queued and called on the dispatcher's own goroutine, so
// that a slow handler never blocks the campaign. That goroutine runs only
// while the queue has events: an elector that nothing happens to (a leader
// in its term, a follower of a stable leader) has none, which keeps a
// process leading or following thousands of resources at one goroutine
// each, plus its leaders' watches; a leader call runs on a goroutine of its
// own (see callHere), the only one a leader keeps of its campaign. Events
// come from the goroutine that runs the campaign at the time, one at a time.
//
// The queue is coalesced: a follower notification still waiting when a
// newer one arrives is replaced by it, so that a slow handler is told the
// latest state rather than every state in between. Only a step-down notice
// (keep) is never replaced; and since every leader call (callHere) waits
// until the queue is empty, and the campaign waits for the call, the queue holds at
// most a step-down notice, one follower notification and a fence.
type dispatcher struct {
	handler Handler
	log     func() *slog.Logger     // the logger, without e
	state   *atomic.Pointer[status] // where each call is recorded as it begins; may be nil

	// e, when set, is the elector's engine, which gives the logger and is
	// told of each new goroutine of the loop before its first call.
	e *engine

	mu       sync.Mutex
	queue    []event
	busy     bool // the loop is calling the handler
	running  bool // a goroutine runs the loop
	closed   bool
	taken    notice        // the key of the last event taken for a call
	done     chan struct{} // made by close; closed once the queue is empty then
	doneOnce sync.Once
}

func newDispatcher(h Handler, log func() *slog.Logger) *dispatcher {
	return &dispatcher{handler: h, log: log}
}

// logger returns the logger of the dispatcher's records.
func (d *dispatcher) logger() *slog.Logger {
	if d.e != nil {
		return d.e.logger()
	}
	return d.log()
}

// runLocked starts the loop's goroutine unless one runs. It holds d.mu.
func (d *dispatcher) runLocked() {
	if !d.running {
		d.running = true
		go d.loop()
	}
}

// enqueue queues ev, replacing a follower notification still waiting. A
// notification that would only repeat the last one taken for a call, once
// the one between them is replaced, is dropped.
func (d *dispatcher) enqueue(ev event) {
	d.mu.Lock()
	if n := len(d.queue); n > 0 && d.queue[n-1].replaceable() && ev.replaceable() {
		d.queue = d.queue[:n-1]
		if n == 1 && ev.key == d.taken {
			d.mu.Unlock()
			return
		}
		if n > 1 && ev.key == d.queue[n-2].key {
			d.mu.Unlock()
			return
		}
	}
	d.queue = append(d.queue, ev)
	d.runLocked()
	d.mu.Unlock()
}

// callHere calls the handler for ev on the caller's goroutine, once every
// event queued before it has been handled. Since only the caller enqueues,
// the loop stays idle until it returns, and calls stay one at a time and in
// order. Calling on the leader call's own goroutine spares it a goroutine
// switch at each end of its term.
func (d *dispatcher) callHere(ev *event) {
	d.drain()
	d.mu.Lock()
	d.taken = ev.key
	d.mu.Unlock()
	d.handle(ev)
}

// drain returns once the loop has handled every queued event.
func (d *dispatcher) drain() {
	d.mu.Lock()
	if len(d.queue) == 0 && !d.busy {
		d.mu.Unlock()
		return
	}
	fence := make(chan struct{})
	d.queue = append(d.queue, event{fence: fence})
	d.runLocked()
	d.mu.Unlock()
	<-fence
}

// close closes d.done once the queue is empty. No event may be queued
// after it.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.done = make(chan struct{})
	idle := !d.running
	d.mu.Unlock()
	if idle {
		d.doneOnce.Do(func() { close(d.done) })
	}
}

// loop handles the queued events, and returns once the queue is empty.
func (d *dispatcher) loop() {
	if d.e != nil {
		d.e.setGoroutine(&d.e.dispatchGoroutine)
	}
	for {
		d.mu.Lock()
		d.busy = false
		if len(d.queue) == 0 {
			d.running = false
			closed := d.closed
			d.mu.Unlock()
			if closed {
				d.doneOnce.Do(func() { close(d.done) })
			}
			return
		}
		ev := d.queue[0]
		d.queue[0] = event{}
		d.queue = d.queue[1:]
		if len(d.queue) == 0 {
			d.queue = nil // an idle elector keeps no array of events
		}
		d.busy = ev.fence == nil
		if ev.fence == nil {
			d.taken = ev.key
		}
		d.mu.Unlock()

		if ev.fence != nil {
			close(ev.fence)
			continue
		}
		d.handle(&ev)
	}
}

// handle calls the handler for ev and reports the outcome: the error to
// onError (or the log), then done.
func (d *dispatcher) handle(ev *event) {
	err := d.call(ev)
	switch {
	case err != nil && ev.onError != nil:
		ev.onError(err)
	case err != nil:
		d.logger().Debug("handler returned an error for a follower notification", "err", err)
	}
	if ev.done != nil {
		close(ev.done)
	}
}

// call runs the handler, turning a panic into a *PanicError.
func (d *dispatcher) call(ev *event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			pe := &PanicError{Value: v, Stack: debug.Stack()}
			d.logger().Error("handler panicked; giving the term up", "panic", v, "stack", string(pe.Stack))
			err = pe
		}
	}()
	if d.state != nil {
		d.record(ev)
	}
	return d.handler(ev.ctx, ev.l)
}

// record stores what ev tells, as its call begins. It is a function of its
// own so that the frame of call, which a leader's goroutine keeps for the
// term, holds no copy of ev.
//
//go:noinline
func (d *dispatcher) record(ev *event) {
	st := ev.st
	if st == nil {
		st = new(status)
	}
	*st = status{l: ev.l}
	if ev.l.IsLeader {
		st.term = ev.ctx
	}
	d.state.Store(st)
}
