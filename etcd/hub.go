package etcd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// hubIdle is how long a hub keeps watching after its last Watch call
// returned.
const hubIdle = 30 * time.Second

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
	st      state
	known   bool                        // st was read at least once
	queue   map[string]*mvccpb.KeyValue // every key under the prefix, as of queueAt
	offset  termOffset                  // the term offset, as of queueAt
	queueAt int64                       // 0 until the queue was loaded
	err     error                       // why the watch fails right now
	changed chan struct{}               // closed and replaced when st.rec or err changes
	waiting int                         // Watch calls waiting on the hub
	idle    time.Time                   // when waiting last dropped to zero
	stop    context.CancelFunc
	done    chan struct{} // closed when the running goroutine returns; nil if none

	// noted is when st was recorded. highest is the highest term of a
	// leader seen. lost is set when etcd's revisions were seen to go back,
	// as after a loss of its data (a member rebuilt empty): its term
	// offset is lost too, and the next acquisition must first raise the
	// term floor above highest. rewatch ends the current watch, which
	// waits for revisions the member will reach only much later, so that
	// it is created anew.
	noted   time.Time
	highest uint64
	lost    bool
	rewatch context.CancelFunc
}

// hubLocked returns the hub of resource, creating it. b.mu is held.
func (b *Backend) hubLocked(resource, prefix string) *hub {
	h := b.hubs[resource]
	if h == nil {
		h = &hub{b: b, resource: resource, prefix: prefix, member: !b.alone && member(resource, prefix), changed: make(chan struct{})}
		b.hubs[resource] = h
		if h.member {
			b.group.members[prefix] = append(b.group.members[prefix], h)
		}
	}
	return h
}

// remember records st as the state of resource unless a later one is known,
// wakes the waiting Watch calls if the leadership changed, and returns st.
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
	wake := !h.known || st.rec.Revision != h.st.rec.Revision
	h.st, h.known, h.noted = st, true, time.Now()
	if wake {
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
	h.queue, h.queueAt = nil, 0
	if h.rewatch != nil {
		h.rewatch()
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

func (h *hub) wakeLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

func (h *hub) setErr(err error) {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	h.setErrLocked(err)
}

// setErrLocked records why the watch fails, waking the waiting calls when
// it starts or stops failing. b.mu is held.
func (h *hub) setErrLocked(err error) {
	wake := (h.err == nil) != (err == nil)
	h.err = err
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

// exit unregisters a waiting Watch call.
func (h *hub) exit() {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	if h.waiting--; h.waiting == 0 {
		h.idle = time.Now()
	}
	if g := h.b.group; h.member {
		if g.waiting--; g.waiting == 0 {
			g.idle = time.Now()
		}
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
	if h.done != nil {
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	h.stop, h.done = stop, done
	go h.run(ctx, done)
}

// halt stops the watch, if it runs, and waits for it.
func (h *hub) halt() {
	h.b.mu.Lock()
	stop, done := h.stop, h.done
	h.b.mu.Unlock()
	if done != nil {
		stop()
		<-done
	}
}

// idleNow reports whether no Watch call has waited for hubIdle.
func (h *hub) idleNow() bool {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	return h.waiting == 0 && time.Since(h.idle) >= hubIdle
}

// run watches until ctx ends or the hub is idle, retrying after failures.
func (h *hub) run(ctx context.Context, done chan struct{}) {
	for {
		again, err := h.follow(ctx)
		switch {
		case again:
			continue
		case err != nil && ctx.Err() == nil:
			h.b.log.Warn("watch of the leader failed; retrying", "prefix", h.prefix, "err", err)
			h.setErr(err)
			t := time.NewTimer(h.b.retry)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			if !h.idleNow() {
				continue
			}
		}
		// Stopped, or idle: return unless a Watch call came meanwhile.
		h.b.mu.Lock()
		if ctx.Err() == nil && h.waiting > 0 {
			h.b.mu.Unlock()
			continue
		}
		h.stop()
		h.stop, h.done = nil, nil
		h.queue, h.queueAt = nil, 0 // no longer kept up to date
		h.wakeLocked()              // calls still waiting start it again
		close(done)
		h.b.mu.Unlock()
		return
	}
}

// follow runs one watch. It returns again when the watch must be created
// anew (the revisions it had to replay after a reconnection were
// compacted), or an error; neither when the hub stops.
//
// The watch covers the term offset key and the candidates' keys, which
// follow it in key order. It starts at the member's current revision, so
// that the member counts it synced at once; the queue is loaded after the
// watch was created, and the events it already reflects are skipped.
func (h *hub) follow(ctx context.Context) (again bool, err error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	h.b.mu.Lock()
	h.rewatch = cancel
	h.b.mu.Unlock()
	defer func() {
		h.b.mu.Lock()
		h.rewatch = nil
		h.b.mu.Unlock()
	}()
	wch := h.b.client.Watch(wctx, offsetKey(h.prefix),
		clientv3.WithRange(clientv3.GetPrefixRangeEnd(h.prefix+"/")), clientv3.WithCreatedNotify())
	tick := time.NewTicker(hubIdle / 4)
	defer tick.Stop()
	for {
		var (
			wr   clientv3.WatchResponse
			open bool
		)
		select {
		case <-ctx.Done():
			return false, nil
		case <-tick.C:
			if h.idleNow() {
				return false, nil
			}
			continue
		case wr, open = <-wch:
		}
		switch {
		case !open && ctx.Err() != nil:
			return false, nil
		case !open && wctx.Err() != nil:
			return true, nil // ended by wentBackLocked
		case !open:
			return false, fmt.Errorf("etcd: watch %s: the watch ended without a reason (client closed?)", h.prefix)
		case errors.Is(wr.Err(), rpctypes.ErrCompacted):
			h.b.log.Debug("watch resumed from a compacted revision; watching afresh",
				"prefix", h.prefix, "compacted", wr.CompactRevision)
			h.b.mu.Lock()
			h.queue, h.queueAt = nil, 0
			h.b.mu.Unlock()
			return true, nil
		case wr.Err() != nil:
			return false, watchError("watch "+h.prefix, wr)
		case wr.Created:
			if err := h.load(ctx); err != nil {
				return false, err
			}
			h.setErr(nil)
			continue
		}
		if err := h.apply(wr.Events); err != nil {
			return false, err
		}
	}
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
	q := make(map[string]*mvccpb.KeyValue, len(kvs))
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
			o := termOffset{} // deleted: no offset
			if ev.Type != mvccpb.DELETE {
				var err error
				if o, err = parseOffset(ev.Kv); err != nil {
					return err
				}
			}
			h.offset = o
		case !strings.HasPrefix(key, candidates):
			continue // a key of no election between the two
		case ev.Type == mvccpb.DELETE:
			delete(h.queue, key)
		default:
			h.queue[key] = ev.Kv
		}
		h.queueAt = max(h.queueAt, rev)
	}
	h.updateLocked(h.queueStateLocked())
	return nil
}

// queueStateLocked is the state the queue shows: its first key by create
// revision leads. b.mu is held.
func (h *hub) queueStateLocked() state {
	var lead *mvccpb.KeyValue
	for _, kv := range h.queue {
		if lead == nil || kv.CreateRevision < lead.CreateRevision {
			lead = kv
		}
	}
	return stateOf(h.prefix, lead, h.offset, h.queueAt)
}
