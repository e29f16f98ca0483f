package etcd

import (
	"context"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/internal/turn"
)

// hubIdle is how long a hub keeps watching after its last Watch call
// returned.
const hubIdle = 30 * time.Second

// turnBound is how long the candidate whose key became first may take to
// call Acquire before the other waiting candidates are woken anyway.
const turnBound = 200 * time.Millisecond

// hub follows the leadership of one resource. It holds the latest state
// known, from reads or from its watch, and while Watch calls wait it keeps
// one watch on the election's prefix, with which it maintains the whole
// queue of candidates' keys: when the leader's key goes, it knows the next
// one without a read, and wakes the waiting calls.
//
// One long-lived watch, rather than one per Watch call, also stays synced
// with the member: etcd delivers the events of a watch created from a past
// revision only once it has caught up, which it does every 100 ms, so a
// watch created just before a change would delay it by up to that much.
type hub struct {
	watcher  // of the prefix, unless b.group watches it
	resource string
	prefix   string
	member   bool // under its DefaultPrefix, of a backend not alone: b.group watches it

	// Guarded by b.mu.
	st      state
	known   bool          // st was read at least once
	queue   queue         // every key under the prefix, as of queueAt
	offset  termOffset    // the term offset, as of queueAt
	queueAt int64         // 0 until the queue was loaded
	err     error         // why the watch fails right now
	changed chan struct{} // closed and replaced when st.rec or err changes
	// line is the candidates of this process waiting through WatchTurn.
	// When the first key becomes one of theirs, that candidate alone is
	// woken, and changed is closed once it has acquired (see turnTaken).
	line turn.Line
	// watches is the WatchRecord calls, told of every change of st.rec
	// and ended by an error.
	watches []*recordWatch

	// noted is when st was recorded. highest is the highest term of a
	// leader seen. lost is set when etcd's revisions were seen to go back,
	// as after a loss of its data (a member rebuilt empty): its term
	// offset is lost too, and the next acquisition must first raise the
	// term floor above highest; the current watch, which waits for
	// revisions the member will reach only much later, is then created
	// anew.
	noted   time.Time
	highest uint64
	lost    bool
}

// hubLocked returns the hub of resource, creating it. b.mu is held.
func (b *Backend) hubLocked(resource, prefix string) *hub {
	h := b.hubs[resource]
	if h == nil {
		h = &hub{
			watcher:  watcher{b: b, attr: "prefix", name: prefix, key: offsetKey(prefix), end: clientv3.GetPrefixRangeEnd(prefix + "/")},
			resource: resource,
			prefix:   prefix,
			member:   !b.alone && member(resource, prefix),
			changed:  make(chan struct{}),
		}
		b.hubs[resource] = h
		if h.member {
			b.group.members[prefix] = append(b.group.members[prefix], h)
		}
	}
	return h
}

// remember records st as the state of resource unless a later one is known,
// wakes the waiting Watch calls and tells the WatchRecord calls if the
// leadership changed, and returns st.
func (b *Backend) remember(resource, prefix string, st state) state {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hubLocked(resource, prefix).updateLocked(st)
	return st
}

// latest returns the latest state known of resource.
func (b *Backend) latest(resource string) (state, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h := b.hubs[resource]; h != nil && h.known {
		return h.st, true
	}
	return state{}, false
}

func (h *hub) updateLocked(st state) {
	if st.rec.Session != "" {
		h.highest = max(h.highest, st.rec.Term)
	}
	if h.known && st.asOf <= h.st.asOf && !h.wentBackLocked(st.asOf, st.sent) {
		return
	}
	wasKnown := h.known
	wake := !h.known || st.rec.Revision != h.st.rec.Revision
	h.st, h.known, h.noted = st, true, time.Now()
	if !wake {
		return
	}
	h.tellWatchesLocked()
	if wasKnown && !st.rec.Free() && h.line.Give(st.rec.Session, turnBound, h.expireTurn) {
		// The next in line waits in this process: it is the leader as
		// soon as it sees this state, and it alone is woken now.
		return
	}
	h.wakeLocked()
}

// expireTurn wakes every waiting call when the candidate given the turn
// did not acquire within turnBound.
func (h *hub) expireTurn() {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	if h.line.On() {
		h.wakeLocked()
	}
}

// turnTaken wakes the waiting calls of resource held back for the turn of
// the next in line, which has just acquired.
func (b *Backend) turnTaken(resource string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h := b.hubs[resource]; h != nil && h.line.On() {
		h.wakeLocked()
	}
}

// wentBackLocked reports whether rev, the revision of a response to a
// request sent at sent, shows that etcd lost its data, and handles it if
// so: the revision is below that of the state known, although the request
// was sent after that state was recorded. etcd's reads are linearizable,
// so a request sent after another returned sees a revision at least as
// high, unless the revisions started again from the beginning. A zero
// sent proves nothing: a request that overlapped another may see an older
// revision. The known state is then stale, the watch waits for revisions
// long in the member's future, and the term offset is gone: the watch is
// created anew, and the next acquisition raises the floor first. b.mu is
// held.
func (h *hub) wentBackLocked(rev int64, sent time.Time) bool {
	if !h.known || sent.IsZero() || rev >= h.st.asOf || !sent.After(h.noted) {
		return false
	}
	h.b.log.Warn("etcd's revisions went back, as after a loss of its data; watching afresh",
		"prefix", h.prefix, "revision", rev, "before", h.st.asOf)
	h.lost = h.highest > 0
	h.forgetLocked()
	h.rewatchLocked()
	if h.member {
		h.b.group.resetLocked()
	}
	return true
}

// noteRevision records the revision of a response to a request sent at
// sent that read no election, such as a lease grant: one below the known
// state of a resource tells that etcd lost its data, and the state with it.
func (b *Backend) noteRevision(rev int64, sent time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, h := range b.hubs {
		if h.wentBackLocked(rev, sent) {
			h.known = false
			h.wakeLocked()
		}
	}
}

// lossFloor returns the term floor an acquisition of resource must raise
// first: the highest term seen, if etcd was seen to lose its data since
// the floor was last raised; 0 otherwise.
func (b *Backend) lossFloor(resource string) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h := b.hubs[resource]; h != nil && h.lost {
		return h.highest
	}
	return 0
}

// floorRaised records that the term floor of resource was raised to floor.
func (b *Backend) floorRaised(resource string, floor uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h := b.hubs[resource]; h != nil {
		h.lost = h.lost && h.highest > floor
	}
}

// wakeLocked wakes every waiting call, and ends the turn if one is on.
// b.mu is held.
func (h *hub) wakeLocked() {
	h.line.End()
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *hub) setErr(err error) {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	h.setErrLocked(err)
}

// setErrLocked records why the watch fails, waking the waiting calls when
// it starts or stops failing, and ending the WatchRecord calls with err.
// b.mu is held.
func (h *hub) setErrLocked(err error) {
	wake := (h.err == nil) != (err == nil)
	h.err = err
	if err != nil {
		h.failWatchesLocked(err)
	}
	if wake {
		h.wakeLocked()
	}
}

// enterLocked registers a waiting Watch call and starts the watch if it is
// not running. b.mu is held.
func (h *hub) enterLocked() {
	h.waiting++
	if h.member {
		h.b.group.waiting++
	}
	h.startLocked()
}

// exit unregisters a waiting Watch call, and w from the line when not nil.
// A call that held the turn and did not return the state it was given the
// turn for (acted false) ends the turn.
func (h *hub) exit(w *turn.Waiter, acted bool) {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	if w != nil {
		h.line.Leave(w)
		if h.line.Holds(w) && !acted {
			h.wakeLocked()
		}
	}
	h.leaveLocked()
	if h.member {
		h.b.group.leaveLocked()
	}
}

// startLocked starts the watch unless it runs: the group's, for a member
// unless etcd refused the group its watch; the hub's own otherwise. b.mu is
// held.
func (h *hub) startLocked() {
	if h.member && !h.b.group.denied {
		h.b.group.startLocked(h)
		return
	}
	h.launchLocked(h)
}

// failed records why the watch failed: it is retried.
func (h *hub) failed(err error) bool {
	h.b.log.Warn("watch of the leader failed; retrying", "prefix", h.prefix, "err", err)
	h.setErr(err)
	return true
}

// stoppedLocked wakes the calls still waiting, which start the watch
// again, and ends the WatchRecord calls; the queue is no longer kept up to
// date. b.mu is held.
func (h *hub) stoppedLocked() {
	h.forgetLocked()
	h.wakeLocked()
	h.watchStoppedLocked()
}

// forgetLocked drops the queue, which the next watch loads anew. b.mu is
// held.
func (h *hub) forgetLocked() {
	h.queue, h.queueAt = nil, 0
}

// created loads the queue once the watch of the prefix was created. The
// watch covers the term offset key and the candidates' keys, which follow
// it in key order. It starts at the member's current revision, so that
// the member counts it synced at once; the queue is loaded after the
// watch was created, and the events it already reflects are skipped.
func (h *hub) created(ctx context.Context) (again bool, err error) {
	if err := h.load(ctx); err != nil {
		return false, err
	}
	h.setErr(nil)
	return false, nil
}

// load reads every key under the prefix into the queue, and the term
// offset, in one transaction.
func (h *hub) load(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, h.b.timeout)
	defer cancel()
	sent := time.Now()
	resp, err := h.b.client.Txn(rctx).
		Then(clientv3.OpGet(h.prefix+"/", clientv3.WithPrefix()), clientv3.OpGet(offsetKey(h.prefix))).
		Commit()
	if err != nil {
		return storeError("read candidates of "+h.prefix, err)
	}
	off, err := parseOffset(first(resp.Responses[1].GetResponseRange().GetKvs()))
	if err != nil {
		return err
	}
	kvs := resp.Responses[0].GetResponseRange().GetKvs()
	q := make(queue, len(kvs))
	for _, kv := range kvs {
		q[string(kv.Key)] = kv
	}
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	h.queue, h.offset, h.queueAt = q, off, resp.Header.Revision
	st := h.queueStateLocked()
	st.sent = sent
	h.updateLocked(st)
	return nil
}

// apply applies a batch of watched events to the queue and the offset.
// Events at or before the revision the queue was loaded at are already in
// it; a batch holds whole revisions.
func (h *hub) apply(events []*clientv3.Event) error {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	if h.queueAt == 0 {
		return nil // not loaded: the watch is being recreated
	}
	from, off, candidates := h.queueAt, offsetKey(h.prefix), h.prefix+"/"
	for _, ev := range events {
		key, rev := string(ev.Kv.Key), ev.Kv.ModRevision
		switch {
		case rev <= from:
			continue
		case key == off:
			o, err := offsetOf(ev)
			if err != nil {
				return err
			}
			h.offset = o
		case !strings.HasPrefix(key, candidates):
			continue // a key of no election between the two
		default:
			h.queue.update(ev)
		}
		h.queueAt = max(h.queueAt, rev)
	}
	h.updateLocked(h.queueStateLocked())
	return nil
}

// queueStateLocked is the state the queue shows: its first key by create
// revision leads. b.mu is held.
func (h *hub) queueStateLocked() state {
	return stateOf(h.prefix, h.queue.leader(), h.offset, h.queueAt)
}
