package etcd

import (
	"fmt"

	"github.com/consul-leader/consul-leader/election"
)

var _ election.RecordWatcher = (*Backend)(nil)

// recordWatch is a WatchRecord call on a hub, until it is stopped or its
// watch fails.
type recordWatch struct {
	after   uint64 // the revision last passed, or the caller's
	changed func(election.Record, error)
}

// WatchRecord calls changed with the leadership of resource whenever the
// backend's watch of the election's prefix (or of the prefix root) sees
// its revision change from after, and with the watch's error when it
// fails or stops (Close), which ends this watch. It waits as Watch does,
// without a goroutine: changed is called under the backend's lock, from
// the goroutine of the shared watch, or before WatchRecord returns when
// the leadership has changed already or the watch fails right now.
func (b *Backend) WatchRecord(resource string, after uint64, changed func(election.Record, error)) (stop func()) {
	prefix, err := b.Prefix(resource)
	if err != nil {
		changed(election.Record{}, err)
		return func() {}
	}
	w := &recordWatch{after: after, changed: changed}
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.hubLocked(resource, prefix)
	h.watches = append(h.watches, w)
	h.enterLocked() // starts the watch, and may tell w already
	if h.watchingLocked(w) {
		switch {
		case h.err != nil:
			h.failWatchesLocked(h.err)
		case h.known:
			h.tellLocked(w)
		}
	}
	return func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		h.unwatchLocked(w)
	}
}

// tellLocked calls w.changed with the state known if its revision is not
// the one w last passed. b.mu is held.
func (h *hub) tellLocked(w *recordWatch) {
	if rec := h.st.rec; rec.Revision != w.after {
		w.after = rec.Revision
		w.changed(rec, nil)
	}
}

// tellWatchesLocked tells every WatchRecord call the state known. b.mu is
// held.
func (h *hub) tellWatchesLocked() {
	for _, w := range h.watches {
		h.tellLocked(w)
	}
}

// failWatchesLocked ends every WatchRecord call with err. b.mu is held.
func (h *hub) failWatchesLocked(err error) {
	ws := h.watches
	h.watches = nil
	for _, w := range ws {
		h.leftLocked()
		w.changed(election.Record{}, err)
	}
}

// watchStoppedLocked ends every WatchRecord call, once the watch they
// waited on stopped. b.mu is held.
func (h *hub) watchStoppedLocked() {
	if len(h.watches) > 0 {
		h.failWatchesLocked(fmt.Errorf("etcd: watch %s: stopped", h.prefix))
	}
}

// watchingLocked reports whether w is a WatchRecord call of h not ended.
// b.mu is held.
func (h *hub) watchingLocked(w *recordWatch) bool {
	for _, x := range h.watches {
		if x == w {
			return true
		}
	}
	return false
}

// unwatchLocked ends w unless it has ended. b.mu is held.
func (h *hub) unwatchLocked(w *recordWatch) {
	for i, x := range h.watches {
		if x == w {
			last := len(h.watches) - 1
			h.watches[i], h.watches[last] = h.watches[last], nil
			h.watches = h.watches[:last]
			if last == 0 {
				h.watches = nil
			}
			h.leftLocked()
			return
		}
	}
}

// leftLocked unregisters a waiting call, as exit does. b.mu is held.
func (h *hub) leftLocked() {
	h.leaveLocked()
	if h.member {
		h.b.group.leaveLocked()
	}
}
