package redis

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// recordReadTimeout bounds each read of a record for the WatchRecord calls
// (as the engine's default RequestTimeout does at the default TTL), and so
// how long Close may wait for one in flight: go-redis ends a request at its
// context's deadline, not when the context is cancelled.
const recordReadTimeout = 3 * time.Second

var _ election.RecordWatcher = (*Backend)(nil)

// recordWatch is a WatchRecord call, until it is stopped or ended by a
// failure.
type recordWatch struct {
	mu      sync.Mutex // held while changed runs
	after   uint64     // the revision last passed, or the caller's
	changed func(election.Record, error)
	done    bool // stopped, or ended by a failure: changed is not called again
}

// WatchRecord calls changed with the record of resource whenever a read of
// it shows a revision other than after and than the one last passed, and
// with an error, once, when such a read fails or the Backend is closed,
// which ends the call. It reads the record when Watch would wake: on a
// notice of the resource, on a (re)subscription, on a lost connection and
// when a lease's renewal finds the record changed; and once as it begins,
// unless the last read of the record shows after and no notice came since,
// or the resource's subscription is being made (its confirmation wakes
// it). A turn of the candidates following the resource (WatchTurn) does
// not hold it back.
//
// It keeps no goroutine: the reads run on the backend's readers, at most
// half of MaxRequests at a time, which run only while reads are due;
// changed runs on them, and before WatchRecord returns when the Backend is
// closed.
func (b *Backend) WatchRecord(resource string, after uint64, changed func(election.Record, error)) (stop func()) {
	if err := b.check(); err != nil {
		changed(election.Record{}, err)
		return func() {}
	}
	h := b.hub
	w := &recordWatch{after: after, changed: changed}
	k := b.keys(resource)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		changed(election.Record{}, errClosed())
		return func() {}
	}
	t := h.topicLocked(resource, k)
	t.records = append(t.records, w)
	h.mu.Unlock()
	// Read now unless the last read still holds: a notice since then, or
	// one coming, queues a read anyway.
	if _, _, ok := h.recall(t, after, recallAge, b.leased); !ok {
		h.mu.Lock()
		if !h.closed && slices.Contains(t.records, w) {
			h.queueLocked(t)
		}
		h.mu.Unlock()
	}
	return func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
		h.mu.Lock()
		t.records = slices.DeleteFunc(t.records, func(x *recordWatch) bool { return x == w })
		if len(t.records) == 0 {
			t.records = nil
		}
		h.mu.Unlock()
	}
}

// deliver passes rec, or err, to w unless it has ended: err ends it, and
// rec is passed when its revision is not the one last passed.
func (w *recordWatch) deliver(rec election.Record, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.done:
	case err != nil:
		w.done = true
		w.changed(election.Record{}, err)
	case rec.Revision != w.after:
		w.after = rec.Revision
		w.changed(rec, nil)
	}
}

// queueLocked has t's record read for its record watches, unless a read
// for them is queued already: after the one in flight, if any. It starts a
// reader if fewer than maxReaders run. The caller holds h.mu.
func (h *hub) queueLocked(t *topic) {
	if t.queued || h.closed {
		return
	}
	t.queued = true
	if t.reading {
		return // queued again once the read in flight is told
	}
	h.queue = append(h.queue, t)
	if h.readers < h.maxReaders {
		h.readers++
		h.readersWG.Add(1)
		go h.readRecords()
	}
}

// readRecords reads the records of the queued topics, one at a time, for
// their record watches, until none is queued or the hub is closed.
func (h *hub) readRecords() {
	defer h.readersWG.Done()
	for {
		h.mu.Lock()
		if len(h.queue) == 0 || h.closed {
			h.readers--
			h.mu.Unlock()
			return
		}
		t := h.queue[0]
		h.queue[0] = nil
		h.queue = h.queue[1:]
		if len(h.queue) == 0 {
			h.queue = nil
		}
		t.queued, t.reading = false, true
		h.mu.Unlock()
		h.readFor(t)
	}
}

// readFor reads t's record and tells its record watches: those watching
// when the read was sent, so that none is told a record older than its
// own. Where t's subscription is not active, it first subscribes, and
// leaves the read to the subscription's confirmation (or refusal, or
// failure), which queues it; where a SUBSCRIBE awaits its reply, it
// leaves the read to that reply.
func (h *hub) readFor(t *topic) {
	h.mu.Lock()
	ws := slices.Clone(t.records)
	send := len(ws) > 0 && !t.active && !t.inflight && (t.refused.IsZero() || time.Since(t.refused) > refusalRetry)
	if send {
		t.inflight = true
	}
	wait := t.inflight
	ps, changed := h.ps, t.wake
	h.mu.Unlock()

	var (
		rec election.Record
		err error
	)
	if send {
		sctx, cancel := context.WithTimeout(h.ctx, recordReadTimeout)
		h.subscribe(sctx, ps, t)
		cancel()
	}
	read := len(ws) > 0 && !wait
	if read {
		rec, err = h.read(h.ctx, t, changed)
	}

	h.mu.Lock()
	t.reading = false
	if read && err != nil {
		// The failure ends the watches it was read for.
		t.records = slices.DeleteFunc(t.records, func(x *recordWatch) bool { return slices.Contains(ws, x) })
		if len(t.records) == 0 {
			t.records = nil
		}
	}
	if t.queued && !h.closed {
		h.queue = append(h.queue, t) // this reader, still running, reads it
	}
	h.mu.Unlock()
	if read {
		for _, w := range ws {
			w.deliver(rec, err)
		}
	}
}

// readRecord reads t's record for its record watches, woken by changed,
// sharing the read with the Watch calls woken by it.
func (b *Backend) readRecord(ctx context.Context, t *topic, changed chan struct{}) (election.Record, error) {
	k := b.keys(t.resource)
	rec, _, err := b.readShared(ctx, t.resource, &k, t, changed, recordReadTimeout)
	return rec, err
}
