package consul

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

var _ election.RecordWatcher = (*Backend)(nil)

// recordWatch is a WatchRecord call: a leader's watch of its record. While
// its key's group reads its root recursively, the group's listing tells it
// (it is listed), without a goroutine of its own. Otherwise a goroutine of
// its own loops on the key's blocking reads, as Watch does (its loop): with
// Options.Handoff, for a key without a root, or one hidden from a
// recursive read, once Consul refused its group the recursive read, after
// Close, and while its root has too few keys watched for a recursive read
// (ListThreshold) — the group's start then moves the loop to its listing.
//
// A leader keeps its recordWatch for its whole term, so it is kept small:
// since is a monotonic reading (see mono), and what only a loop needs is
// apart.
type recordWatch struct {
	w       *watches
	key     string
	changed func(election.Record, error)

	// mu is held while changed runs, and guards after, since and ended.
	mu sync.Mutex
	// after is the revision last passed (or the caller's), passed at since:
	// a read sent before may show an older revision, one sent after shows
	// an older revision only if Consul lost its data.
	after uint64
	since int64

	// Guarded by w.mu.
	g    *group  // the group the key counts in; nil if none
	loop *rwLoop // its loop, if one ever ran

	ended   bool // stopped, or failed: changed is not called again (guarded by mu)
	listed  bool // in g.records (guarded by w.mu)
	removed bool // stopped or failed: counts in no group (guarded by w.mu)
}

// rwLoop is the loop of a recordWatch. Guarded by w.mu.
type rwLoop struct {
	cancel context.CancelFunc // ends the loop running; nil if none runs
	done   chan struct{}      // closed once the last loop has returned
}

// WatchRecord calls changed with the leadership record of resource each
// time the backend sees its Revision change from after (and from the one
// it last passed), and with an error, once, when its watch fails, which
// ends this watch. It is Watch without a goroutine: where the key is read
// by its root's recursive read (see Watch), the goroutine of that read
// calls changed, which costs nothing per leader; otherwise (Handoff, a key
// without a slash, one the token cannot list, or fewer keys of the root
// watched than ListThreshold) a goroutine of this call loops on Watch's
// blocking reads of the key, and moves to the recursive read once one
// starts. Unlike Watch, it does not wait for the turn of a candidate of
// this backend: a leader learns of its loss at once. Close ends the
// watches on recursive reads with an error; later ones loop on their own
// reads.
func (b *Backend) WatchRecord(resource string, after uint64, changed func(election.Record, error)) (stop func()) {
	if err := election.ValidateResource(resource); err != nil {
		changed(election.Record{}, err)
		return func() {}
	}
	rw := &recordWatch{w: b.watches, key: b.Key(resource), changed: changed, after: after, since: mono(time.Now())}
	b.watches.watchRecord(rw)
	return rw.stop
}

// watchRecord begins rw: on its group's listing if the group reads, or
// will now that rw counts; on a loop otherwise.
func (w *watches) watchRecord(rw *recordWatch) {
	root := rootOf(rw.key)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || root == "" || w.b.opts.Handoff || w.b.keys.unlisted(rw.key) {
		w.loopLocked(rw)
		return
	}
	g := w.groups[root]
	if g == nil {
		g = &group{root: root, watching: map[string]int{}, waiters: map[string][]*listWaiter{}}
		w.groups[root] = g
	}
	g.watching[rw.key]++
	rw.g = g
	if !g.refused && (g.running || len(g.watching) > ListThreshold) {
		w.listLocked(g, rw)
		return
	}
	w.loopLocked(rw)
}

// listLocked has g's listing tell rw, and starts g's reads if they do not
// run. A listing kept that shows rw's key changed already has the next
// round read at once. w.mu is held.
func (w *watches) listLocked(g *group, rw *recordWatch) {
	if g.records == nil {
		g.records = map[*recordWatch]struct{}{}
	}
	g.records[rw] = struct{}{}
	rw.listed = true
	if g.running && g.snap != nil && strings.HasPrefix(rw.key, g.snapPrefix) &&
		rw.shows(snapRevision(g.snap, rw.key, g.snapIndex), g.sent) {
		g.index = 0
		if g.restart != nil {
			g.restart()
		}
	}
	w.readLocked(g, rw.key)
}

// loopLocked starts rw's loop. w.mu is held.
func (w *watches) loopLocked(rw *recordWatch) {
	rw.listed = false
	if rw.g != nil {
		if rw.g.loops == nil {
			rw.g.loops = map[*recordWatch]struct{}{}
		}
		rw.g.loops[rw] = struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background()) // reads on its own after Close, as Watch does
	var prev chan struct{}
	if rw.loop == nil {
		rw.loop = &rwLoop{}
	} else {
		prev = rw.loop.done
	}
	done := make(chan struct{})
	rw.loop.cancel, rw.loop.done = cancel, done
	go rw.run(ctx, prev, done)
}

// listLoopsLocked moves the loops of g's keys to g's listing, which
// starts: their goroutines end. w.mu is held.
func (w *watches) listLoopsLocked(g *group) {
	for rw := range g.loops {
		if w.b.keys.unlisted(rw.key) {
			continue
		}
		delete(g.loops, rw)
		rw.loop.cancel()
		rw.loop.cancel = nil
		if g.records == nil {
			g.records = map[*recordWatch]struct{}{}
		}
		g.records[rw] = struct{}{}
		rw.listed = true
	}
}

// run is rw's loop: it watches rw's key with Watch's blocking reads, until
// ctx ends (rw stops or moves to a listing) or a read fails. It begins once
// the loop before it, prev, has returned, if there was one.
func (rw *recordWatch) run(ctx context.Context, prev, done chan struct{}) {
	defer close(done)
	if prev != nil {
		<-prev
	}
	w := rw.w
	o := w.b.opts.Options.WithDefaults()
	wait := w.recordWait()
	for {
		rw.mu.Lock()
		after, ended := rw.after, rw.ended
		rw.mu.Unlock()
		if ended || ctx.Err() != nil {
			return
		}
		rctx, cancel := context.WithTimeout(ctx, wait+o.RequestTimeout)
		sent := time.Now()
		rec, _, err := w.watch(rctx, rw.key, after, wait, nil)
		cancel()
		if ctx.Err() != nil {
			return // stopped, or moved to a listing
		}
		if err != nil {
			w.endRecord(rw, err)
			return
		}
		rw.tell(rec, sent)
	}
}

// recordWait is how long a blocking read for WatchRecord calls waits: a
// leader's wait (election.LeaderWait) at the backend's options.
func (w *watches) recordWait() time.Duration {
	return election.LeaderWait(w.b.opts.Options)
}

// shows reports whether a read sent at sent, showing rw's key at rev, is a
// change to pass to rw. rw.mu must not be held.
func (rw *recordWatch) shows(rev uint64, sent time.Time) bool {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return rw.showsLocked(rev, sent)
}

func (rw *recordWatch) showsLocked(rev uint64, sent time.Time) bool {
	return rev != rw.after && (rev > rw.after || mono(sent) > rw.since)
}

// tell passes rec, read by a request sent at sent, to changed if it is a
// change, unless rw has ended.
func (rw *recordWatch) tell(rec election.Record, sent time.Time) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.ended || !rw.showsLocked(rec.Revision, sent) {
		return
	}
	rw.after, rw.since = rec.Revision, mono(time.Now())
	rw.changed(rec, nil)
}

// fail passes err to changed, and ends rw, unless it has ended.
func (rw *recordWatch) fail(err error) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if rw.ended {
		return
	}
	rw.ended = true
	rw.changed(election.Record{}, err)
}

// tellRecords passes o, or err, what the listing read at sent showed of
// key, to the WatchRecord calls rws. A key the listing turned out to hide
// from the token is watched on loops from then on.
func (w *watches) tellRecords(key string, rws []*recordWatch, o observation, err error, sent time.Time) {
	if err != nil {
		for _, rw := range rws {
			w.endRecord(rw, err)
		}
		return
	}
	for _, rw := range rws {
		rw.tell(o.Record, sent)
	}
	if !w.b.keys.unlisted(key) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, rw := range rws {
		if !rw.listed || rw.removed {
			continue
		}
		w.unlistLocked(rw)
		w.loopLocked(rw)
	}
}

// endRecord ends rw with err, as its watch failed: it counts in no group
// any more, and changed is told, once.
func (w *watches) endRecord(rw *recordWatch, err error) {
	w.mu.Lock()
	w.removeLocked(rw)
	w.mu.Unlock()
	rw.fail(recordError(rw.key, err))
}

// endRecordsLocked ends every WatchRecord call g's listing tells with err.
// w.mu is held; changed is called on a goroutine of w.wg, as w.mu must not
// be held then.
func (w *watches) endRecordsLocked(g *group, err error) {
	ended := make([]*recordWatch, 0, len(g.records))
	for rw := range g.records {
		ended = append(ended, rw)
	}
	for _, rw := range ended {
		w.removeLocked(rw)
	}
	if len(ended) == 0 {
		return
	}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for _, rw := range ended {
			rw.fail(recordError(rw.key, err))
		}
	}()
}

// recordError is the error of a WatchRecord call of key that failed.
func recordError(key string, err error) error {
	return fmt.Errorf("consul: watch %q: %w", key, err)
}

// stop ends rw: once it has returned, changed is not running and is not
// called again, and rw's loop has returned.
func (rw *recordWatch) stop() {
	rw.mu.Lock()
	rw.ended = true
	rw.mu.Unlock()
	w := rw.w
	w.mu.Lock()
	w.removeLocked(rw)
	var done chan struct{}
	if rw.loop != nil {
		done = rw.loop.done
	}
	w.mu.Unlock()
	if done != nil {
		<-done
	}
}

// removeLocked takes rw out of its group's listing and counts, and ends
// its loop. w.mu is held.
func (w *watches) removeLocked(rw *recordWatch) {
	if rw.removed {
		return
	}
	rw.removed = true
	if rw.loop != nil && rw.loop.cancel != nil {
		rw.loop.cancel()
		rw.loop.cancel = nil
	}
	g := rw.g
	if g == nil {
		return
	}
	w.unlistLocked(rw)
	delete(g.loops, rw)
	if g.watching[rw.key]--; g.watching[rw.key] <= 0 {
		delete(g.watching, rw.key)
	}
	if g.idle() && g.restart != nil {
		g.restart()
	}
	if len(g.watching) == 0 && !g.running && !g.refused && w.groups[g.root] == g {
		delete(w.groups, g.root)
	}
}

// unlistLocked takes rw out of its group's listing. w.mu is held.
func (w *watches) unlistLocked(rw *recordWatch) {
	if !rw.listed {
		return
	}
	rw.listed = false
	delete(rw.g.records, rw)
}
