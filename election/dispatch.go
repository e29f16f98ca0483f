package election

import (
	"context"
	"log/slog"
	"runtime/debug"
	"sync"
)

// event is one call of the handler.
type event struct {
	ctx     context.Context
	l       Leadership
	done    chan struct{}   // closed when the call returned; may be nil
	onError func(err error) // called with the call's error before done; may be nil
}

// dispatcher calls the handler one event at a time, in order, on its own
// goroutine, so that a handler that blocks for its whole term never blocks
// the campaign.
type dispatcher struct {
	handler Handler
	log     *slog.Logger

	mu     sync.Mutex
	queue  []event
	closed bool
	wake   chan struct{}
	done   chan struct{}
}

func newDispatcher(h Handler, log *slog.Logger) *dispatcher {
	return &dispatcher{handler: h, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (d *dispatcher) enqueue(ev event) {
	d.mu.Lock()
	d.queue = append(d.queue, ev)
	d.mu.Unlock()
	d.signal()
}

// close lets the loop return once the queue is empty.
func (d *dispatcher) close() {
	d.mu.Lock()
	d.closed = true
	d.mu.Unlock()
	d.signal()
}

func (d *dispatcher) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) loop() {
	defer close(d.done)
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			closed := d.closed
			d.mu.Unlock()
			if closed {
				return
			}
			<-d.wake
			continue
		}
		ev := d.queue[0]
		d.queue[0] = event{}
		d.queue = d.queue[1:]
		d.mu.Unlock()

		err := d.call(ev)
		switch {
		case err != nil && ev.onError != nil:
			ev.onError(err)
		case err != nil:
			d.log.Debug("handler returned an error for a follower notification", "err", err)
		}
		if ev.done != nil {
			close(ev.done)
		}
	}
}

// call runs the handler, turning a panic into a *PanicError.
func (d *dispatcher) call(ev event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			pe := &PanicError{Value: v, Stack: debug.Stack()}
			d.log.Error("handler panicked; giving the term up", "panic", v, "stack", string(pe.Stack))
			err = pe
		}
	}()
	return d.handler(ev.ctx, ev.l)
}
