package consul

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// Sharing the blocking reads of Watch.
const (
	// ListThreshold is the number of distinct keys under one root (the
	// key's first path segment, "service/" for the default keys) above
	// which a Backend serves their watches from one recursive blocking read
	// of their common prefix instead of one blocking read per key. Below
	// it, a key's own blocking read returns less data on every change.
	ListThreshold = 8
	// maxListWait bounds the wait of a shared recursive read: its callers
	// return at their own waits from the records it keeps current.
	maxListWait = 5 * time.Minute
	// giveUpMargin is how long a caller waits past the answer Consul owes
	// to a blocking read of the caller's own wait (the wait and its
	// jitter), before it answers from the newest record seen.
	giveUpMargin = 500 * time.Millisecond
)

// errWatchesClosed ends the shared reads when the backend is closed; their
// callers then read on their own.
var errWatchesClosed = errors.New("consul: backend closed")

// errListRefused hands the callers waiting for a recursive read that Consul
// refused back to reads of their own keys.
var errListRefused = errors.New("consul: recursive read refused")

// errToList moves the callers of a key's own read to its group's recursive
// read.
var errToList = errors.New("consul: moved to a recursive read")

// watches shares the blocking reads of concurrent Watch calls: calls for
// the same key and revision join one read (a flight), and the keys of a
// root watched by more than ListThreshold calls are read together, by one
// recursive read per root (a group). A shared read runs on a goroutine of
// its own, under a context of the backend, and is cancelled as soon as no
// caller waits for it; Close cancels them all and waits for them.
type watches struct {
	b      *Backend
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	flights map[flightKey]*flight
	groups  map[string]*group

	// answered counts the calls a shared read answered, each a goroutine
	// woken.
	answered atomic.Int64
}

func newWatches(b *Backend) *watches {
	ctx, cancel := context.WithCancel(context.Background())
	return &watches{b: b, ctx: ctx, cancel: cancel, flights: map[flightKey]*flight{}, groups: map[string]*group{}}
}

// close cancels every shared read and waits for its goroutine. Watch calls
// waiting for one read on their own; later calls do too.
func (w *watches) close() {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.cancel()
	w.wg.Wait()
}

// watch is Backend.Watch of key for after != 0 and wait > 0. A call of a
// candidate in key's line passes its place p, through which the shared read
// answers it (see lines.answer): released reports an answer held back for
// another candidate's turn.
func (w *watches) watch(ctx context.Context, key string, after uint64, wait time.Duration, p *place) (rec election.Record, released bool, err error) {
	sw := serverWait(ctx, wait)
	g, useList, closed := w.enter(key)
	if closed {
		rec, err = w.b.readOnce(ctx, key, after, wait)
		return rec, false, err
	}
	if g != nil {
		defer w.unwatch(g, key)
	}
	giveUp := time.NewTimer(giveUpAfter(ctx, sw))
	defer giveUp.Stop()
	var r *listResult
	for {
		if useList {
			r = w.listen(ctx, g, key, after, sw, giveUp.C, p)
		} else {
			r = w.join(ctx, key, after, sw, giveUp.C, p)
		}
		err = r.err
		switch {
		case errors.Is(err, errListRefused):
			useList = false
			continue
		case errors.Is(err, errToList) && g != nil:
			useList = true
			continue
		}
		break
	}
	if errors.Is(err, errWatchesClosed) {
		rec, err = w.b.readOnce(ctx, key, after, wait)
		return rec, false, err
	}
	return r.o.Record, r.released, err
}

// reply answers a call waiting for a shared read on ch with r: a call in
// line (p not nil) through the line, when r is a change from after; any
// other at once. ch must have room for the answer. The caller holds no
// lock.
func (w *watches) reply(p *place, after uint64, ch chan<- *listResult, r *listResult) {
	send := func(released bool) {
		r.released = released
		w.answered.Add(1)
		ch <- r
	}
	if p == nil || r.err != nil || r.o.Revision == after {
		send(false)
		return
	}
	w.b.lines.answer(p, r.o.Record, send)
}

// enter begins a Watch call of key: in the group of its root, if it has
// one, which serves it from its listing (useList) once enough keys are
// watched. closed reports a closed backend, the call then reading on its
// own.
func (w *watches) enter(key string) (g *group, useList, closed bool) {
	root := rootOf(key)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, false, true
	}
	if root != "" && !w.b.opts.Handoff {
		if !w.b.keys.unlisted(key) {
			g = w.groups[root]
			if g == nil {
				g = &group{root: root, watching: map[string]int{}, waiters: map[string][]*listWaiter{}}
				w.groups[root] = g
			}
			g.watching[key]++
			useList = !g.refused && (g.running || len(g.watching) > ListThreshold)
		}
	}
	return g, useList, false
}

// unwatch ends a Watch call of key in g.
func (w *watches) unwatch(g *group, key string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if g.watching[key]--; g.watching[key] <= 0 {
		delete(g.watching, key)
	}
	if len(g.watching) == 0 && !g.running && !g.refused && w.groups[g.root] == g {
		delete(w.groups, g.root)
	}
}

// giveUpAfter is how long a caller whose blocking read asks Consul for
// sw waits for a shared read: the wait, Consul's jitter of up to sw/16,
// and a margin, but at most half of what ctx's deadline leaves beyond
// that, so that the caller always answers in time.
func giveUpAfter(ctx context.Context, sw time.Duration) time.Duration {
	owed := sw + sw/16
	margin := giveUpMargin
	if dl, ok := ctx.Deadline(); ok {
		margin = min(margin, max(time.Until(dl)-owed, 0)/2)
	}
	return owed + margin
}

// gaveUp answers a caller whose wait passed before the shared read it
// waits for answered: nothing changed, as far as the backend knows, so the
// newest record seen of key. ok is false if none at after or later was
// seen, and the caller keeps waiting.
func (w *watches) gaveUp(key string, after uint64) (observation, bool) {
	r, ok := w.b.keys.latest(key)
	if !ok || r.Revision < after {
		return observation{}, false
	}
	return observation{Record: r}, true
}

// rootOf returns the first path segment of key with its slash, the group
// of keys that may share a recursive read; "" for a key without a slash.
func rootOf(key string) string {
	i := strings.IndexByte(key, '/')
	if i < 0 {
		return ""
	}
	return key[:i+1]
}

// readOnce is Watch's own blocking read of key, unshared: the read of a
// closed backend.
func (b *Backend) readOnce(ctx context.Context, key string, after uint64, wait time.Duration) (election.Record, error) {
	q := b.queryOptions(ctx)
	q.WaitIndex = after
	q.WaitTime = serverWait(ctx, wait)
	if b.opts.Handoff {
		q.WaitIndex = b.keys.waitIndex(key, after)
		o, err := b.readList(ctx, key, q)
		return o.Record, err
	}
	o, err := b.read(ctx, key, q)
	return o.Record, err
}

// ctxError is the error of a Watch call whose context ended while it
// waited for a shared read.
func ctxError(ctx context.Context, key string) error {
	return fmt.Errorf("consul: read %q: %w", key, context.Cause(ctx))
}
