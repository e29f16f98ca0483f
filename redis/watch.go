package redis

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/turn"
)

const (
	// subscribeWait bounds how long a Watch waits for its resource's
	// release-notice subscription to become active before it falls back to
	// its timers for that call.
	subscribeWait = time.Second
	// expiryMargin is added to a leader key's remaining TTL before it is
	// read again, so that the key has expired when the timer fires.
	expiryMargin = 2 * time.Millisecond
	// recallAge is how old the previous Watch's last read of a resource may
	// be for the next Watch to start from it instead of reading again, if no
	// notice arrived since. The engine calls Watch again at once when one
	// returns at the end of its wait, so this halves an idle follower's
	// reads.
	recallAge = 50 * time.Millisecond
)

// Watch returns the leadership record of resource. With after == 0 it reads
// it at once, from the primary. Otherwise it blocks until the record's
// revision differs from after, wait has passed, or ctx ends. It wakes on a
// release or acquisition notice (one subscription per backend), on a
// keyspace notification of the leader key where the server publishes them,
// when the leader key's TTL runs out (a leader that died announces
// nothing), and when wait has passed; each wake-up is one read.
func (b *Backend) Watch(ctx context.Context, resource string, after uint64, wait time.Duration) (election.Record, error) {
	return b.watch(ctx, resource, after, wait, "")
}

// watch is Watch, by the candidate of session id, which waits in the
// resource's line of candidates unless id is empty (see WatchTurn): at a
// release, the candidate waiting longest is woken alone, and the others
// once it has acquired (when it leads, once its leader call begins).
//
// A follower or a leader keeps this frame on its stack while it waits (the
// frames an elector waits under are all its goroutine keeps), and so the
// state of the call and the reads it makes are kept out of it.
func (b *Backend) watch(ctx context.Context, resource string, after uint64, wait time.Duration, id string) (election.Record, error) {
	if after == 0 || wait <= 0 {
		return b.readNow(ctx, resource)
	}
	if err := b.check(); err != nil {
		return election.Record{}, err
	}
	w := b.newWatchCall(ctx, resource, after, wait)
	w.join(id)
	defer w.leave()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for first := true; ; first = false {
		changed := b.hub.changed(w.t) // taken before the read, so no notice is missed
		left, done, err := w.look(ctx, changed, first)
		switch {
		case err != nil:
			return election.Record{}, err
		case done:
			w.acted = w.rec.Revision != after && w.tw != nil && w.turnC == nil
			return w.rec, nil
		}
		if w.tw != nil && w.turnC == nil {
			b.hub.giveBack(w.t, w.tw) // given the turn, with nothing to act on
		}
		timer.Reset(left)
		select {
		case <-changed:
			if err := b.check(); err != nil {
				return election.Record{}, err
			}
		case <-w.turnC:
			w.turnC = nil
		case <-timer.C:
		case <-ctx.Done():
			return election.Record{}, watchEnded(ctx, &w.k)
		}
	}
}

// readNow reads the leadership record of resource from the primary. It is
// not inlined, so that its frame is not part of Watch's, which a waiting
// elector keeps on its stack.
//
//go:noinline
func (b *Backend) readNow(ctx context.Context, resource string) (election.Record, error) {
	if err := b.check(); err != nil {
		return election.Record{}, err
	}
	rec, _, err := b.read(ctx, resource, b.keys(resource))
	return rec, err
}

// watchCall is the state of a blocking Watch.
type watchCall struct {
	b        *Backend
	resource string
	k        keys
	t        *topic
	after    uint64
	budget   time.Duration // of each request
	deadline time.Time     // the end of the wait
	rec      election.Record
	pttl     time.Duration

	// The candidate's place in the resource's line; nil without one.
	tw    *turn.Waiter
	turnC <-chan struct{} // its turn; nil once given, or without a place
	acted bool            // returned the record it was given the turn for
}

// join puts the candidate of session id, unless id is empty, in the line
// of w's resource. (The call's state is kept out of Watch's frame, which a
// waiting elector keeps on its stack.)
func (w *watchCall) join(id string) {
	if id == "" {
		return
	}
	if w.tw = w.b.hub.join(w.t, id); w.tw != nil {
		w.turnC = w.tw.Turn()
	}
}

// leave takes the candidate out of the line, passing the turn on if it
// held it without acting.
func (w *watchCall) leave() { w.b.hub.leave(w.t, w.tw, w.acted) }

// newWatchCall begins a blocking Watch of resource.
func (b *Backend) newWatchCall(ctx context.Context, resource string, after uint64, wait time.Duration) *watchCall {
	w := &watchCall{b: b, resource: resource, k: b.keys(resource), after: after, budget: requestBudget(ctx, wait)}
	w.t = b.hub.topic(ctx, resource, w.k, w.budget, min(wait, subscribeWait))
	w.deadline = time.Now().Add(wait)
	return w
}

// look brings w.rec up to date after a wake-up (the first, or by
// changed), reading it unless the last read still holds, and returns
// whether the call is done, or how long to wait at most before the next
// look.
func (w *watchCall) look(ctx context.Context, changed chan struct{}, first bool) (left time.Duration, done bool, err error) {
	b := w.b
	// The first turn, and every turn after a read of a record held
	// through a live lease of this backend, starts from the last read if
	// nothing changed since: a leader on a shared session then reads its
	// record only when told of a change.
	recall := first || b.leased(w.rec.Session)
	fresh := false
	w.pttl = 0
	if recall {
		w.rec, w.pttl, fresh = b.hub.recall(w.t, w.after, recallAge, b.leased)
	}
	if !fresh && !first {
		w.rec, w.pttl, fresh = b.hub.sinceNotice(w.t, changed)
	}
	if !fresh {
		if w.rec, w.pttl, err = b.readShared(ctx, w.resource, &w.k, w.t, changed, w.budget); err != nil {
			return 0, false, err
		}
	}
	left = time.Until(w.deadline)
	if w.rec.Revision != w.after || left <= 0 {
		return 0, true, nil
	}
	// A record this backend's own leading session holds needs no expiry
	// timer: that session's renewals report its loss.
	if w.pttl > 0 && w.pttl+expiryMargin < left && !b.owns(w.rec.Session) {
		left = w.pttl + expiryMargin
	}
	return left, false, nil
}

// readShared reads the record of resource for a Watch woken by changed,
// sharing the read with the other watchers of the key woken by it, and
// remembers it in t.
func (b *Backend) readShared(ctx context.Context, resource string, k *keys, t *topic, changed chan struct{}, budget time.Duration) (election.Record, time.Duration, error) {
	sent := time.Now()
	rctx, cancel := context.WithTimeout(ctx, budget)
	// The watchers of the key woken by one notice share one read: a read
	// begun after the same notice sees what any of them would, and a
	// change after it brings a notice of its own.
	r, _, err := b.reading.Do(rctx, fmt.Sprintf("%s\x00%p", k.leader, changed), func() (readResult, error) {
		rec, pttl, err := b.read(rctx, resource, *k)
		return readResult{rec, pttl}, err
	})
	rec, pttl := r.rec, r.pttl
	rec.Value = bytes.Clone(rec.Value)
	cancel()
	if ctx.Err() != nil {
		return election.Record{}, 0, watchEnded(ctx, k)
	}
	if err != nil {
		return election.Record{}, 0, err
	}
	b.hub.remember(t, changed, rec, pttl, sent)
	return rec, pttl, nil
}

// watchEnded is the error of a Watch of k whose ctx ended.
func watchEnded(ctx context.Context, k *keys) error {
	return fmt.Errorf("redis: watch %s: %w", k.leader, ctx.Err())
}

// readResult is the outcome of a read, shared by the watchers of a key.
type readResult struct {
	rec  election.Record
	pttl time.Duration
}

// requestBudget is how long one request of a blocking Watch may take: the
// time its context leaves beyond wait (the engine's RequestTimeout), or
// election.MaxRequestTimeout without a deadline. go-redis ends a request at
// its context's deadline but not when the context is cancelled, so each
// request gets its own short deadline: a cancelled Watch returns within one
// budget instead of at the end of its wait.
func requestBudget(ctx context.Context, wait time.Duration) time.Duration {
	dl, ok := ctx.Deadline()
	if !ok {
		return election.MaxRequestTimeout
	}
	left := time.Until(dl)
	if left > wait {
		return left - wait
	}
	return max(left, time.Millisecond)
}

// read returns the leadership record of a resource and, when it is held,
// the leader key's remaining TTL (zero if the key has none).
func (b *Backend) read(ctx context.Context, resource string, k keys) (election.Record, time.Duration, error) {
	res, err := readScript.Run(ctx, b.run, []string{k.leader, k.term}).Slice()
	if err != nil {
		return election.Record{}, 0, wrap("read", k.leader, err)
	}
	if len(res) >= 2 {
		if flag, ok := res[0].(int64); ok {
			switch raw, _ := res[1].(string); {
			case flag == 1 && len(res) == 3:
				rec := parseHeld(raw)
				b.observe(resource, rec.Term)
				var pttl time.Duration
				if ms, ok := res[2].(int64); ok && ms > 0 {
					pttl = time.Duration(ms) * time.Millisecond
				}
				return rec, pttl, nil
			case flag == 0:
				counter, err := strconv.ParseUint(raw, 10, 64)
				if err != nil {
					return election.Record{}, 0, fmt.Errorf("redis: read %s: the term counter %s holds %q, not a number", k.leader, k.term, raw)
				}
				b.observe(resource, counter)
				return freeRecord(counter), 0, nil
			}
		}
	}
	return election.Record{}, 0, fmt.Errorf("redis: read %s: unexpected reply %v", k.leader, res)
}
