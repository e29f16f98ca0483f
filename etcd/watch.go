package etcd

import (
	"context"
	"fmt"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/turn"
)

// Watch returns the leadership of resource. With after == 0, or wait <= 0,
// it reads it linearizably. Otherwise it waits, for at most wait, until the
// backend's watch of the election's prefix sees the leadership change, and
// returns the state then known: a follower sends nothing while the leader stays, and
// learns the new leader from the event that changed it.
//
// The watch requires the member to have a raft leader, so that a member cut
// off from its cluster fails it instead of leaving it silent; while it
// fails, Watch returns its error, and the watch is retried after
// RetryInterval. A watch that must resume from a compacted revision, after
// a lost connection, is created anew and reloads the queue.
func (b *Backend) Watch(ctx context.Context, resource string, after uint64, wait time.Duration) (election.Record, error) {
	return b.watch(ctx, resource, after, wait, "")
}

// watch is Watch, by the candidate of session id, which waits in the
// resource's line of candidates, unless id is empty: when its key becomes
// the first, it is woken alone, and the other candidates once it has
// acquired (see hub.line).
//
// A follower or a leader keeps this frame on its stack while it waits (the
// frames an elector waits under are all its goroutine keeps), and so the
// reads are functions of their own.
func (b *Backend) watch(ctx context.Context, resource string, after uint64, wait time.Duration, id string) (election.Record, error) {
	prefix, err := b.Prefix(resource)
	if err != nil {
		return election.Record{}, err
	}
	if after == 0 || wait <= 0 {
		return b.readRecord(ctx, resource, prefix)
	}
	h, w, err := b.enter(ctx, resource, prefix, id)
	if err != nil {
		return election.Record{}, err
	}
	var turnC <-chan struct{}
	if w != nil {
		turnC = w.Turn()
	}
	acted := false    // returned the state it was given the turn for
	gaveBack := false // was given the turn, and ended it with nothing to act on
	defer func() { h.exit(w, acted) }()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		b.mu.Lock()
		h.startLocked() // again, if it stopped on a Close meanwhile
		rec, err, changed := h.st.rec, h.err, h.changedLocked()
		b.mu.Unlock()
		switch {
		case err != nil:
			return election.Record{}, err
		case rec.Revision != after:
			acted = turnC == nil && w != nil
			return rec, nil
		case turnC == nil && w != nil && !gaveBack:
			// Given the turn, but with nothing to act on.
			gaveBack = true
			h.giveBack(w)
			continue
		}
		select {
		case <-changed:
		case <-turnC:
			turnC = nil
		case <-timer.C:
			return rec, nil
		case <-ctx.Done():
			return election.Record{}, h.watchEnded(ctx)
		}
	}
}

// readRecord reads the leadership of resource linearizably. It is not
// inlined, so that its frame is not part of Watch's, which a waiting
// elector keeps on its stack.
//
//go:noinline
func (b *Backend) readRecord(ctx context.Context, resource, prefix string) (election.Record, error) {
	st, err := b.read(ctx, resource, prefix)
	return st.rec, err
}

// enter joins the hub of resource, and, for the candidate of session id
// unless id is empty, its line of candidates; it reads the hub's state
// first unless it is known. The caller exits the hub once done.
func (b *Backend) enter(ctx context.Context, resource, prefix, id string) (*hub, *turn.Waiter, error) {
	b.mu.Lock()
	h := b.hubLocked(resource, prefix)
	h.enterLocked()
	known := h.known
	var w *turn.Waiter
	if id != "" {
		if h.line.HeldBy(id) {
			h.wakeLocked() // it was given the turn, and waits again instead
		}
		w = h.line.Join(id)
	}
	b.mu.Unlock()
	if !known {
		if _, err := b.read(ctx, resource, prefix); err != nil {
			h.exit(w, false)
			return nil, nil, err
		}
	}
	return h, w, nil
}

// giveBack passes the turn on if w holds it: it was given the turn and
// found nothing to act on.
func (h *hub) giveBack(w *turn.Waiter) {
	h.b.mu.Lock()
	defer h.b.mu.Unlock()
	if h.line.Holds(w) {
		h.wakeLocked()
	}
}

// watchEnded is the error of a Watch of h whose ctx ended.
func (h *hub) watchEnded(ctx context.Context) error {
	return fmt.Errorf("etcd: watch %s: %w", h.prefix, ctx.Err())
}
