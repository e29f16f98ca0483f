package consul

import (
	"context"
	"slices"
	"time"
)

// flightKey names a blocking read of one key: calls with the same key and
// revision share it.
type flightKey struct {
	key   string
	after uint64
}

// flight is one blocking read of a key, shared by the Watch calls that wait
// for it. done is closed once o and err are set.
type flight struct {
	cancel  context.CancelFunc
	waiters int
	done    chan struct{}
	// toList is closed when the key's group starts a recursive read: the
	// callers move to it, and the flight ends with the last of them.
	toList chan struct{}
	moved  bool
	// inLine are the calls of candidates in the key's line, each answered
	// on its own channel, through the line (watches.reply); the others
	// wait for done.
	inLine []*flightCall
	o      observation
	err    error
}

// flightCall is a call in line waiting for a flight.
type flightCall struct {
	p  *place
	ch chan *listResult
}

// join waits for the blocking read of key from after, starting it if no
// other call has: the first caller's server wait sw is the read's. It
// returns when the read answers (a call in line at p: as the line lets
// it), when ctx ends, or at giveUp with the newest record seen.
func (w *watches) join(ctx context.Context, key string, after uint64, sw time.Duration, giveUp <-chan time.Time, p *place) *listResult {
	fk := flightKey{key, after}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return &listResult{err: errWatchesClosed}
	}
	f := w.flights[fk]
	if f == nil {
		fctx, cancel := context.WithCancel(w.ctx)
		f = &flight{cancel: cancel, done: make(chan struct{}), toList: make(chan struct{})}
		w.flights[fk] = f
		w.wg.Add(1)
		go w.fly(fctx, fk, f, sw)
	}
	f.waiters++
	done := f.done
	var fc *flightCall
	var answered <-chan *listResult
	if p != nil {
		fc = &flightCall{p: p, ch: make(chan *listResult, 1)}
		f.inLine = append(f.inLine, fc)
		done, answered = nil, fc.ch
	}
	w.mu.Unlock()
	for {
		select {
		case <-done:
			return &listResult{o: f.o, err: f.err}
		case r := <-answered:
			return r
		case <-f.toList:
			w.leave(fk, f, fc)
			return &listResult{err: errToList}
		case <-ctx.Done():
			w.leave(fk, f, fc)
			return &listResult{err: ctxError(ctx, key)}
		case <-giveUp:
			if o, ok := w.gaveUp(key, after); ok {
				w.leave(fk, f, fc)
				return &listResult{o: o}
			}
			giveUp = nil
		}
	}
}

// leave ends a caller's wait for f (fc, if it waits in line); the read is
// cancelled when no caller is left.
func (w *watches) leave(fk flightKey, f *flight, fc *flightCall) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if i := slices.Index(f.inLine, fc); fc != nil && i >= 0 {
		f.inLine = slices.Delete(f.inLine, i, i+1)
	}
	f.waiters--
	if f.waiters == 0 && w.flights[fk] == f {
		delete(w.flights, fk)
		f.cancel()
	}
}

// fly runs the blocking read of f.
func (w *watches) fly(ctx context.Context, fk flightKey, f *flight, sw time.Duration) {
	defer w.wg.Done()
	defer f.cancel()
	b := w.b
	q := b.queryOptions(ctx)
	q.WaitIndex = fk.after
	q.WaitTime = sw
	var (
		o   observation
		err error
	)
	if b.opts.Handoff {
		q.WaitIndex = b.keys.waitIndex(fk.key, fk.after)
		o, err = b.readList(ctx, fk.key, q)
	} else {
		o, err = b.read(ctx, fk.key, q)
	}
	if err != nil && w.ctx.Err() != nil {
		err = errWatchesClosed
	}
	w.mu.Lock()
	if w.flights[fk] == f {
		delete(w.flights, fk)
	}
	f.o, f.err = o, err
	inLine := f.inLine
	f.inLine = nil
	w.answered.Add(int64(f.waiters - len(inLine)))
	close(f.done)
	w.mu.Unlock()
	for _, fc := range inLine {
		w.reply(fc.p, fk.after, fc.ch, &listResult{o: o, err: err})
	}
}

// moveToList moves the callers of the flights of keys of g, and the
// loops of its WatchRecord calls, to g's recursive read. The caller holds
// w.mu.
func (w *watches) moveToList(g *group) {
	w.listLoopsLocked(g)
	for fk, f := range w.flights {
		if f.moved || rootOf(fk.key) != g.root {
			continue
		}
		if w.b.keys.unlisted(fk.key) {
			continue
		}
		f.moved = true
		close(f.toList)
	}
}
