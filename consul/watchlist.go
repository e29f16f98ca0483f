package consul

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// group is the watched keys of one root. While it runs, one goroutine
// reads a common prefix of its keys recursively, with blocking reads on the
// listing's index, and answers each waiting call whose key changed.
type group struct {
	root string
	// watching counts the Watch calls in progress per key, in either mode.
	watching map[string]int
	// waiters are the calls waiting for the listing, per key.
	waiters map[string][]*listWaiter
	running bool
	// refused is set once Consul refused the token a recursive read of
	// the prefix (as with acl.enable_key_list_policy and no list right on
	// it): the group's keys are watched one by one from then on.
	refused bool
	// prefix is the prefix read, the common prefix of the keys waited for
	// (up to a slash); it only grows shorter while the group runs. A key
	// outside it cancels the round in flight (restart).
	prefix  string
	restart context.CancelFunc
	// index is the index the next round waits on. snap holds the pairs of
	// the last listing, by key, read from snapPrefix at snapIndex by a
	// request sent at sent.
	index      uint64
	snap       map[string]*api.KVPair
	snapPrefix string
	snapIndex  uint64
	sent       time.Time
}

// listWaiter is a Watch call waiting for the listing.
type listWaiter struct {
	key   string
	after uint64
	sw    time.Duration
	since time.Time // when it started waiting
	p     *place    // its place in the key's line, if it waits in one
	ch    chan *listResult
}

// listResult is the answer of a shared read to a call. released: the
// answer, a change, was held back while another candidate had the turn.
type listResult struct {
	o        observation
	err      error
	released bool
}

// listen waits for a listing of g to show key at a revision other than
// after. A listing sent before the call began may be older than after: it
// answers only with a newer revision.
func (w *watches) listen(ctx context.Context, g *group, key string, after uint64, sw time.Duration, giveUp <-chan time.Time, p *place) *listResult {
	lw := &listWaiter{key: key, after: after, sw: sw, since: time.Now(), p: p, ch: make(chan *listResult, 1)}
	if r := w.enlist(ctx, g, lw); r != nil {
		return r
	}
	// A call keeps the frames of its wait on its stack, as long as the
	// leadership stays: they are kept small, the rest being in functions
	// of their own.
	for {
		select {
		case r := <-lw.ch:
			return r
		case <-ctx.Done():
			return w.stopListening(ctx, g, lw)
		case <-giveUp:
			if r := w.giveUpListening(g, lw); r != nil {
				return r
			}
			giveUp = nil
		}
	}
}

// enlist adds lw to the calls waiting for g's listing, and starts or widens
// its reads as needed; it returns the answer instead when there is one
// already, or the group cannot serve the call.
func (w *watches) enlist(ctx context.Context, g *group, lw *listWaiter) *listResult {
	key, after := lw.key, lw.after
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return &listResult{err: errWatchesClosed}
	}
	if g.refused {
		w.mu.Unlock()
		return &listResult{err: errListRefused}
	}
	if g.snap != nil && strings.HasPrefix(key, g.snapPrefix) {
		// The last listing may already show a newer revision.
		if rev := listRevision(g.snap[key], g.snapIndex); rev > after {
			snap, index, sent := g.snap, g.snapIndex, g.sent
			w.mu.Unlock()
			o, err := w.b.listObservation(ctx, key, snap, index, sent)
			return &listResult{o: o, err: err}
		}
	}
	g.waiters[key] = append(g.waiters[key], lw)
	switch {
	case !g.running:
		g.running = true
		g.prefix = dirOf(key)
		for k := range g.watching {
			g.prefix = commonDir(g.prefix, k)
		}
		w.moveToList(g)
		w.wg.Add(1)
		go w.runGroup(g)
	case !strings.HasPrefix(key, g.prefix):
		g.prefix = commonDir(g.prefix, key)
		if g.restart != nil {
			g.restart()
		}
	}
	w.mu.Unlock()
	return nil
}

// stopListening ends the wait of lw, whose ctx ended: it returns the answer that
// came in between, or ctx's error.
func (w *watches) stopListening(ctx context.Context, g *group, lw *listWaiter) *listResult {
	if r := w.unlisten(g, lw); r != nil {
		return r
	}
	return &listResult{err: ctxError(ctx, lw.key)}
}

// giveUpListening answers lw, whose own wait passed without an answer of
// the listing, with the newest record seen of its key, if that is not
// older than it waits on; it returns nil otherwise, lw waiting on.
func (w *watches) giveUpListening(g *group, lw *listWaiter) *listResult {
	o, ok := w.gaveUp(lw.key, lw.after)
	if !ok {
		return nil
	}
	if r := w.unlisten(g, lw); r != nil {
		return r
	}
	return &listResult{o: o}
}

// unlisten removes lw from g; the round in flight is cancelled when no
// call waits any more. If lw was answered in between, that answer is
// returned.
func (w *watches) unlisten(g *group, lw *listWaiter) *listResult {
	w.mu.Lock()
	defer w.mu.Unlock()
	ws := g.waiters[lw.key]
	for i, x := range ws {
		if x == lw {
			ws = append(ws[:i:i], ws[i+1:]...)
			if len(ws) == 0 {
				delete(g.waiters, lw.key)
			} else {
				g.waiters[lw.key] = ws
			}
			if len(g.waiters) == 0 && g.restart != nil {
				g.restart()
			}
			return nil
		}
	}
	select {
	case r := <-lw.ch:
		return r
	default:
		return nil
	}
}

// runGroup reads g's prefix round after round while calls wait.
func (w *watches) runGroup(g *group) {
	defer w.wg.Done()
	b := w.b
	for {
		w.mu.Lock()
		if w.ctx.Err() != nil || len(g.waiters) == 0 {
			g.running, g.restart, g.snap = false, nil, nil
			if w.ctx.Err() != nil {
				for _, ws := range g.waiters {
					for _, lw := range ws {
						lw.ch <- &listResult{err: errWatchesClosed}
					}
				}
				g.waiters = map[string][]*listWaiter{}
			}
			if len(g.watching) == 0 && !g.refused && w.groups[g.root] == g {
				delete(w.groups, g.root)
			}
			w.mu.Unlock()
			return
		}
		var wait time.Duration
		for _, ws := range g.waiters {
			for _, lw := range ws {
				wait = max(wait, lw.sw)
			}
		}
		rctx, restart := context.WithCancel(w.ctx)
		g.restart = restart
		prefix, index := g.prefix, g.index
		w.mu.Unlock()

		q := b.queryOptions(rctx)
		if index != 0 {
			q.WaitIndex = index
			q.WaitTime = min(wait, maxListWait)
		}
		sent := time.Now()
		pairs, meta, err := b.client.KV().List(prefix, q)
		restarted := rctx.Err() != nil
		restart()
		if restarted {
			continue // closed, no waiter left, or a key outside the prefix
		}
		if err != nil && isPermissionDenied(err) {
			b.log.Warn("the token may not read the leadership keys' common prefix recursively; each key is watched on its own (grant list on the prefix to share one read)",
				"prefix", prefix, "err", err)
			w.mu.Lock()
			g.refused = true
			w.mu.Unlock()
			w.fail(g, errListRefused)
			continue
		}
		if err != nil {
			w.fail(g, wrap(fmt.Sprintf("read %q", prefix), err))
			continue
		}
		w.answer(g, prefix, pairs, meta.LastIndex, sent)
	}
}

// fail hands err to every waiting call of g.
func (w *watches) fail(g *group, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ws := range g.waiters {
		for _, lw := range ws {
			lw.ch <- &listResult{err: err}
		}
	}
	g.waiters = map[string][]*listWaiter{}
	g.index = 0
}

// answer keeps a listing at index, and answers the calls whose key it
// shows at another revision.
func (w *watches) answer(g *group, prefix string, pairs api.KVPairs, index uint64, sent time.Time) {
	snap := make(map[string]*api.KVPair, len(pairs))
	for _, p := range pairs {
		snap[p.Key] = p
	}
	due := map[string][]*listWaiter{}
	w.mu.Lock()
	if index < g.index {
		// Consul's indexes went back, as after a loss of its data: the
		// next round reads at once.
		g.index = 0
	} else {
		g.index = max(index, 1)
	}
	g.snap, g.snapPrefix, g.snapIndex, g.sent = snap, prefix, index, sent
	for key, ws := range g.waiters {
		rev := listRevision(snap[key], index)
		var keep []*listWaiter
		for _, lw := range ws {
			// A listing sent before the call began may be older than the
			// revision it waits on; one sent after it is not, unless Consul
			// lost its data.
			if rev != lw.after && (rev > lw.after || sent.After(lw.since)) {
				due[key] = append(due[key], lw)
			} else {
				keep = append(keep, lw)
			}
		}
		if len(keep) == 0 {
			delete(g.waiters, key)
		} else {
			g.waiters[key] = keep
		}
	}
	w.mu.Unlock()
	timeout := w.b.opts.Options.WithDefaults().RequestTimeout
	for key, ws := range due {
		ctx, cancel := context.WithTimeout(w.ctx, timeout)
		o, err := w.b.listObservation(ctx, key, snap, index, sent)
		cancel()
		if err != nil && w.ctx.Err() != nil {
			err = errWatchesClosed
		}
		for _, lw := range ws {
			w.reply(lw.p, lw.after, lw.ch, &listResult{o: o, err: err})
		}
	}
}

// listRevision is the revision of a key as a listing at index shows it:
// its ModifyIndex, or the listing's index if it is missing.
func listRevision(pair *api.KVPair, index uint64) uint64 {
	if pair == nil {
		return max(index, 1)
	}
	return max(pair.ModifyIndex, 1)
}

// dirOf returns key up to its last slash, included.
func dirOf(key string) string { return key[:strings.LastIndexByte(key, '/')+1] }

// commonDir returns the longest common prefix of dir and key that ends
// with a slash.
func commonDir(dir, key string) string {
	n := 0
	for n < len(dir) && n < len(key) && dir[n] == key[n] {
		n++
	}
	return dirOf(dir[:n])
}
