package consul

import (
	"context"
	"errors"
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
	// records are the WatchRecord calls the listing tells (a set, rather
	// than one per key: a leader watches its key once), and loops those of
	// its keys that read on a goroutine of their own (see recordwatch.go).
	records map[*recordWatch]struct{}
	loops   map[*recordWatch]struct{}
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
	// index is the index the next round waits on. snap holds the
	// revision of each key of the last listing (see listRevision), read
	// from snapPrefix at snapIndex by a request sent at sent: only the
	// revisions, not the pairs, are kept between listings, in strings the
	// group holds already where it can.
	index      uint64
	snap       map[string]uint64
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
		if rev := snapRevision(g.snap, key, g.snapIndex); rev > after {
			_, listed := g.snap[key]
			index, sent := g.snapIndex, g.sent
			w.mu.Unlock()
			return w.changedBefore(ctx, key, rev, listed, index, sent)
		}
	}
	g.waiters[key] = append(g.waiters[key], lw)
	w.readLocked(g, key)
	w.mu.Unlock()
	return nil
}

// changedBefore answers a call for key that the last listing, read at
// index by a request sent at sent, shows changed already, at rev, from what
// the call waits on. A key missing from the listing is observed as the
// listing showed it (see listObservation: it may be hidden from the
// token). One it listed is answered with the record of rev, if the backend
// noted it (as the listing's observation of a key watched then), else with
// a consistent read of the key, which shows rev or a newer revision: the
// listing's pairs are not kept.
func (w *watches) changedBefore(ctx context.Context, key string, rev uint64, listed bool, index uint64, sent time.Time) *listResult {
	if !listed {
		o, err := w.b.listObservation(ctx, key, nil, index, sent)
		return &listResult{o: o, err: err}
	}
	w.b.keys.setListable(key, false)
	if r, ok := w.b.keys.latest(key); ok && r.Revision == rev {
		return &listResult{o: observation{Record: r}}
	}
	o, err := w.b.read(ctx, key, w.b.queryOptions(ctx))
	return &listResult{o: o, err: err}
}

// readLocked has g's listing cover key: it starts g's reads if they do not
// run, or widens their prefix. A listing that starts or widens reads at
// once, rather than waiting on the index of a listing that did not cover
// every key it now does. w.mu is held.
func (w *watches) readLocked(g *group, key string) {
	switch {
	case !g.running:
		g.running = true
		g.index = 0
		g.prefix = dirOf(key)
		for k := range g.watching {
			g.prefix = commonDir(g.prefix, k)
		}
		w.moveToList(g)
		w.wg.Add(1)
		go w.runGroup(g)
	case !strings.HasPrefix(key, g.prefix):
		g.prefix = commonDir(g.prefix, key)
		g.index = 0
		if g.restart != nil {
			g.restart()
		}
	}
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
			if g.idle() && g.restart != nil {
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

// idle reports whether no call waits for g's listing. w.mu is held.
func (g *group) idle() bool { return len(g.waiters) == 0 && len(g.records) == 0 }

// runGroup reads g's prefix round after round while calls wait. A round
// waits for the longest wait of the calls, and LeaderWait for the
// WatchRecord calls, and is given Consul's answer to that wait, and
// RequestTimeout more, before it fails.
func (w *watches) runGroup(g *group) {
	defer w.wg.Done()
	b := w.b
	timeout := b.opts.Options.WithDefaults().RequestTimeout
	for {
		w.mu.Lock()
		if w.ctx.Err() != nil || g.idle() {
			w.stopGroupLocked(g)
			w.mu.Unlock()
			return
		}
		var wait time.Duration
		for _, ws := range g.waiters {
			for _, lw := range ws {
				wait = max(wait, lw.sw)
			}
		}
		if len(g.records) > 0 {
			wait = max(wait, w.recordWait())
		}
		rctx, restart := context.WithCancel(w.ctx)
		g.restart = restart
		prefix, index := g.prefix, g.index
		w.mu.Unlock()

		q := b.queryOptions(rctx)
		limit := timeout
		if index != 0 {
			q.WaitIndex = index
			q.WaitTime = min(wait, maxListWait)
			limit += q.WaitTime + q.WaitTime/16
		}
		dctx, cancel := context.WithTimeout(rctx, limit)
		q = q.WithContext(dctx)
		sent := time.Now()
		pairs, meta, err := b.client.KV().List(prefix, q)
		restarted := rctx.Err() != nil
		cancel()
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

// stopGroupLocked ends g's reads, when no call waits or the backend is
// closed: the calls still waiting then read on their own, and the
// WatchRecord calls end. w.mu is held.
func (w *watches) stopGroupLocked(g *group) {
	g.running, g.restart, g.snap = false, nil, nil
	if w.ctx.Err() != nil {
		for _, ws := range g.waiters {
			for _, lw := range ws {
				lw.ch <- &listResult{err: errWatchesClosed}
			}
		}
		g.waiters = map[string][]*listWaiter{}
		w.endRecordsLocked(g, errWatchesClosed)
	}
	if len(g.watching) == 0 && !g.refused && w.groups[g.root] == g {
		delete(w.groups, g.root)
	}
}

// fail hands err to every waiting call of g. The WatchRecord calls end
// with it, unless Consul refused the read: they read on their own then.
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
	if errors.Is(err, errListRefused) {
		for rw := range g.records {
			w.loopLocked(rw)
		}
		g.records = nil
		return
	}
	w.endRecordsLocked(g, err)
}

// answer keeps a listing at index, and answers the calls whose key it
// shows at another revision.
//
// The pairs are kept only while the calls are answered; the group keeps
// their revisions (see group.snap).
func (w *watches) answer(g *group, prefix string, pairs api.KVPairs, index uint64, sent time.Time) {
	snap := make(map[string]*api.KVPair, len(pairs))
	for _, p := range pairs {
		snap[p.Key] = p
	}
	due := map[string][]*listWaiter{}
	dueRecords := map[string][]*recordWatch{}
	w.mu.Lock()
	revs := make(map[string]uint64, len(pairs))
	for key := range g.watching {
		// The key as the group holds it, rather than the listing's copy.
		if p := snap[key]; p != nil {
			revs[key] = listRevision(p, index)
		}
	}
	for _, p := range pairs {
		if _, ok := revs[p.Key]; !ok {
			revs[p.Key] = listRevision(p, index)
		}
	}
	if index < g.index {
		// Consul's indexes went back, as after a loss of its data: the
		// next round reads at once.
		g.index = 0
	} else {
		g.index = max(index, 1)
	}
	g.snap, g.snapPrefix, g.snapIndex, g.sent = revs, prefix, index, sent
	for key, ws := range g.waiters {
		rev := snapRevision(revs, key, index)
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
	for rw := range g.records {
		if rw.shows(snapRevision(revs, rw.key, index), sent) {
			dueRecords[rw.key] = append(dueRecords[rw.key], rw)
		}
	}
	w.mu.Unlock()
	timeout := w.b.opts.Options.WithDefaults().RequestTimeout
	observe := func(key string) (observation, error) {
		ctx, cancel := context.WithTimeout(w.ctx, timeout)
		defer cancel()
		o, err := w.b.listObservation(ctx, key, snap, index, sent)
		if err != nil && w.ctx.Err() != nil {
			err = errWatchesClosed
		}
		return o, err
	}
	for key, ws := range due {
		o, err := observe(key)
		for _, lw := range ws {
			w.reply(lw.p, lw.after, lw.ch, &listResult{o: o, err: err})
		}
		if rws := dueRecords[key]; rws != nil {
			delete(dueRecords, key)
			w.tellRecords(key, rws, o, err, sent)
		}
	}
	for key, rws := range dueRecords {
		o, err := observe(key)
		w.tellRecords(key, rws, o, err, sent)
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

// snapRevision is the revision of key as a listing at index shows it, from
// the revisions of its keys, revs: that of a missing key is the listing's
// index.
func snapRevision(revs map[string]uint64, key string, index uint64) uint64 {
	if rev, ok := revs[key]; ok {
		return rev
	}
	return max(index, 1)
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
