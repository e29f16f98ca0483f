package etcd

import (
	"context"
	"strconv"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/election"
)

// claim is one candidate's key on a lease: the key prefix + "/" + lease ID
// of one resource, bound to the lease.
type claim struct {
	l     *lease
	h     *hub   // of the resource, which names it and its prefix
	key   string // prefix + "/" + lease ID
	value string // encodeValue(ID, Value)

	mu      sync.Mutex
	queued  bool // the key was put (or its put may have been applied)
	closed  bool
	heldAt  int64 // etcd revision at which the key was seen first; 0 if never
	created int64 // the key's create revision, once seen first
}

var (
	_ election.Claim       = (*claim)(nil)
	_ election.TurnWatcher = (*claim)(nil)
)

// Info describes the claim's session: the lease. Fields holds "lease" (the
// lease ID in hex), "prefix" (the election's key prefix), "key" (the
// candidate's key, which is the leader key while it leads) and, once it
// leads, "createRevision": the key's create revision, which guards writes
// to etcd (see the package documentation) and equals Term unless a term
// floor was raised.
func (c *claim) Info() election.SessionInfo {
	c.mu.Lock()
	created := c.created
	c.mu.Unlock()
	// Built at each call, rather than kept: a claim that leads or follows
	// would otherwise keep a map it is rarely asked for.
	info := c.l.info
	info.Fields = map[string]string{
		"lease":  c.l.hex,
		"key":    c.key,
		"prefix": c.h.prefix,
	}
	if created != 0 {
		info.Fields["createRevision"] = strconv.FormatInt(created, 10)
	}
	return info
}

// Acquire queues the candidate's key and reports the first key.
//
// A candidate joins the queue by putting its key, bound to its lease, unless
// it exists: one transaction that also reads the first key. It leads when
// that key is its own. Once queued, it becomes first when every key created
// before it is gone, which Backend.Watch learns from its watch of the
// prefix; Acquire then reports that state without another request, as
// concurrency.Election's Campaign returns once its predecessors are gone. A
// deletion of the key after that state reaches the same watch, and ends the
// term.
func (c *claim) Acquire(ctx context.Context) (election.Acquisition, error) {
	b, id, resource, prefix := c.l.b, c.l.hex, c.h.resource, c.h.prefix
	c.mu.Lock()
	queued := c.queued
	c.mu.Unlock()
	if queued {
		if st, ok := b.latest(resource); ok && st.rec.Session == id {
			c.held(st)
			return election.Acquisition{Record: st.rec}, nil
		}
	}
	if floor := b.lossFloor(resource); floor > 0 {
		// etcd lost its data, and the term offset with it: raise the
		// floor first, so that even this acquisition's term, which
		// followers may see before the elector checks it, is above every
		// term seen before.
		b.log.Warn("etcd's revisions went back, as after a loss of its data; raising the term floor before acquiring",
			"prefix", prefix, "floor", floor)
		if err := b.RaiseTermFloor(ctx, resource, floor); err != nil {
			return election.Acquisition{}, err
		}
		b.floorRaised(resource, floor)
	}
	c.mu.Lock()
	c.queued = true
	c.mu.Unlock()
	lead, off := firstKey(prefix), clientv3.OpGet(offsetKey(prefix))
	sent := time.Now()
	resp, err := b.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(c.key), "=", 0)).
		Then(clientv3.OpPut(c.key, c.value, clientv3.WithLease(c.l.id)), lead, off).
		Else(lead, off).
		Commit()
	if err != nil {
		return election.Acquisition{}, storeError("queue key "+c.key, err)
	}
	st, err := stateFrom(prefix, resp)
	if err != nil {
		return election.Acquisition{}, err
	}
	st = b.remember(resource, prefix, st, sent)
	if st.rec.Session == id {
		c.held(st)
	}
	return election.Acquisition{Record: st.rec}, nil
}

// WatchTurn is Backend.Watch of the claim's resource, by its candidate,
// which waits in line: when its key becomes the first, it is the leader,
// and it alone is woken; the other candidates of this backend waiting for
// the resource are woken once its leader call begins (TurnTaken), or its
// Acquire returns without the leadership, or it waits again, or after
// 200 ms. They learn the new leader from the watch's event, without a
// request.
func (c *claim) WatchTurn(ctx context.Context, after uint64, wait time.Duration) (election.Record, error) {
	return c.l.b.watch(ctx, c.h.resource, after, wait, c.l.hex)
}

// TurnTaken wakes the candidates of the claim's resource held back while
// this one, woken alone, acquired: it did not lead, or its leader call is
// about to begin (see election.TurnWatcher).
func (c *claim) TurnTaken() { c.l.b.turnTaken(c.h.resource) }

// held records that st shows the claim's key first.
func (c *claim) held(st state) {
	c.mu.Lock()
	if c.heldAt == 0 || st.asOf < c.heldAt {
		c.heldAt = st.asOf
	}
	c.created = st.created
	c.mu.Unlock()
}

// lostFirst reports whether the claim's key, once seen first, has since
// been seen gone: a key that was first stays first until it is deleted, so
// a later state showing anything else means the leadership is gone.
func (c *claim) lostFirst() bool {
	c.mu.Lock()
	heldAt := c.heldAt
	c.mu.Unlock()
	if heldAt == 0 {
		return false
	}
	st, ok := c.l.b.latest(c.h.resource)
	return ok && st.asOf > heldAt && st.rec.Session != c.l.hex
}

// Close deletes the candidate's key, if it is still bound to the lease, so
// that the next candidate leads at once. It leaves the lease as it is.
func (c *claim) Close(ctx context.Context) error {
	c.mu.Lock()
	queued, closed := c.queued, c.closed
	c.closed = true
	c.mu.Unlock()
	if closed {
		return nil
	}
	defer c.l.release(c)
	if !queued {
		return nil
	}
	_, err := c.l.b.client.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(c.key), "=", c.l.id)).
		Then(clientv3.OpDelete(c.key)).
		Commit()
	if err != nil {
		return storeError("delete key "+c.key, err)
	}
	return nil
}
