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
	b        *Backend
	resource string
	prefix   string
	member   bool // under its DefaultPrefix, of a backend not alone: b.group watches it

	// Guarded by b.mu.
	known bool      // st was read at least once
	lost  bool      // see noted
	waits           // the calls waiting on the watch, the group's or own
	own   *ownWatch // the hub's own watch, once it ran; nil while b.group serves it
	st    state
	err   error // why the watch fails right now
	// changed is closed when st.rec or err changes, and then dropped: a
	// Watch call about to wait makes it anew, so that a hub on which
	// nothing waits, such as a leader's, keeps none.
	changed chan struct{}
	// line is the candidates of this process waiting through WatchTurn.
	// When the first key becomes one of theirs, that candidate alone is
	// woken, and changed is closed once it has acquired: when it leads,
	// once its leader call begins (see turnTaken).
	line turn.Line
	// watches is the WatchRecord calls, told of every change of st.rec
	// and ended by an error.
	watches []*recordWatch

	// noted is when st was recorded, as a reading of the monotonic clock
	// (see clock). highest is the highest term of a leader seen. lost is
	// set when etcd's revisions were seen to go back, as after a loss of
	// its data (a member rebuilt empty): its term offset is lost too, and
	// the next acquisition must first raise the term floor above highest;
	// the current watch, which waits for revisions the member will reach
	// only much later, is then created anew.
	noted   time.Duration
	highest uint64
}

// clockStart is the origin of clock.
var clockStart = time.Now()

// clock returns t as a reading of the monotonic clock: the time from the
// package's start to t. A hub keeps a moment so, in a third of the bytes
// of a time.Time.
func clock(t time.Time) time.Duration { return t.Sub(clockStart) }

// ownWatch is the watch a hub runs of its election's prefix, when the
// group does not serve it, and the queue it maintains with it.
type ownWatch struct {
	watcher
	// Guarded by b.mu.
	queue   queue      // every key under the prefix, as of queueAt
	offset  termOffset // the term offset, as of queueAt
	queueAt int64      // 0 until the queue was loaded
}

// hubLocked returns the hub of resource, creating it. b.mu is held.
func (b *Backend) hubLocked(resource, prefix string) *hub {
	h := b.hubs[resource]
	if h == nil {
		if len(b.hubBlock) == 0 {
			b.hubBlock = make([]hub, hubBlock)
		}
		h = &b.hubBlock[0]
		b.hubBlock = b.hubBlock[1:]
		*h = hub{
			b:        b,
			resource: resource,
			prefix:   prefix,
			member:   !b.alone && member(resource, prefix),
		}
		b.hubs[resource] = h
	}
	return h
}

// hubBlock is how many hubs are allocated at a time (see Backend.hubBlock).
const hubBlock = 64

// remember records st as the state of resource unless a later one is known,
// wakes the waiting Watch calls and tells the WatchRecord calls if the
// leadership changed, and returns st. sent is when the request that read
// st was sent (see updateLocked).
func (b *Backend) remember(resource, prefix string, st state, sent time.Time) state {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.hubLocked(resource, prefix).updateLocked(st, sent)
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

// updateLocked records st, read by a request sent at sent, or built from
// watched events with a zero sent, as the state of h unless a later one is
// known, and wakes the waiting calls if the leadership changed. b.mu is
// held.
func (h *hub) updateLocked(st state, sent time.Time) {
	if st.rec.Session != "" {
		h.highest = max(h.highest, st.rec.Term)
	}
	if h.known && st.asOf <= h.st.asOf && !h.wentBackLocked(st.asOf, sent) {
		return
	}
	wasKnown := h.known
	wake := !h.known || st.rec.Revision != h.st.rec.Revision
	h.st, h.known, h.noted = st, true, clock(time.Now())
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
// the next in line, which has acquired: it failed, or another leads, or its
// leader call is about to begin.
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
	if !h.known || sent.IsZero() || rev >= h.st.asOf || clock(sent) <= h.noted {
		return false
	}
	h.b.log.Warn("etcd's revisions went back, as after a loss of its data; watching afresh",
		"prefix", h.prefix, "revision", rev, "before", h.st.asOf)
	h.lost = h.highest > 0
	h.forgetLocked()
	if h.own != nil {
		h.own.rewatchLocked()
	}
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
	if h.changed != nil {
		close(h.changed)
		h.changed = nil
	}
}

// changedLocked returns the channel closed when st.rec or err changes,
// making it if no call waits on it yet. b.mu is held.
func (h *hub) changedLocked() <-chan struct{} {
	if h.changed == nil {
		h.changed = make(chan struct{})
	}
	return h.changed
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
	if h.own == nil {
		h.own = &ownWatch{watcher: watcher{b: h.b, count: &h.waits}}
	}
	h.own.launchLocked(h)
}

// halt stops the hub's own watch, if it runs, and waits for it.
func (h *hub) halt() {
	h.b.mu.Lock()
	own := h.own
	h.b.mu.Unlock()
	if own != nil {
		own.halt()
	}
}

// span is the range of the hub's own watch: the term offset key and the
// candidates' keys, which follow it in key order.
func (h *hub) span() (attr, name, key, end string) {
	return "prefix", h.prefix, offsetKey(h.prefix), clientv3.GetPrefixRangeEnd(h.prefix + "/")
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
	if h.own != nil {
		h.own.queue, h.own.queueAt = nil, 0
	}
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
		c := candOf(h.prefix, kv)
		q[c.name] = c
	}
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	h.own.queue, h.own.offset, h.own.queueAt = q, off, resp.Header.Revision
	h.updateLocked(h.queueStateLocked(), sent)
	return nil
}

// apply applies a batch of watched events to the queue and the offset.
// Events at or before the revision the queue was loaded at are already in
// it; a batch holds whole revisions.
func (h *hub) apply(events []*clientv3.Event) error {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	own := h.own
	if own.queueAt == 0 {
		return nil // not loaded: the watch is being recreated
	}
	from, off, candidates := own.queueAt, offsetKey(h.prefix), h.prefix+"/"
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
			own.offset = o
		case !strings.HasPrefix(key, candidates):
			continue // a key of no election between the two
		default:
			own.queue.update(h.prefix, ev)
		}
		own.queueAt = max(own.queueAt, rev)
	}
	h.updateLocked(h.queueStateLocked(), time.Time{})
	return nil
}

// queueStateLocked is the state the queue shows: its first key by create
// revision leads. b.mu is held.
func (h *hub) queueStateLocked() state {
	return stateOf(h.own.queue.leader(), h.own.offset, h.own.queueAt)
}
