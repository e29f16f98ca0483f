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
// resource's line of candidates unless id is empty (see WatchTurn).
func (b *Backend) watch(ctx context.Context, resource string, after uint64, wait time.Duration, id string) (election.Record, error) {
	if err := b.check(); err != nil {
		return election.Record{}, err
	}
	k := b.keys(resource)
	if after == 0 || wait <= 0 {
		rec, _, err := b.read(ctx, resource, k)
		return rec, err
	}
	budget := requestBudget(ctx, wait)
	t := b.hub.topic(ctx, resource, k, budget, min(wait, subscribeWait))
	var w *turn.Waiter
	if id != "" {
		w = b.hub.join(t, id)
	}
	var turnC <-chan struct{}
	if w != nil {
		turnC = w.Turn()
	}
	acted := false // returned the record it was given the turn for
	defer func() { b.hub.leave(t, w, acted) }()
	deadline := time.Now().Add(wait)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	var rec election.Record
	for first := true; ; first = false {
		changed := b.hub.changed(t) // taken before the read, so no notice is missed
		// The first turn, and every turn after a read of a record held
		// through a live lease of this backend, starts from the last read
		// if nothing changed since: a leader on a shared session then reads
		// its record only when told of a change.
		recall := first || b.leased(rec.Session)
		pttl, fresh := time.Duration(0), false
		if recall {
			rec, pttl, fresh = b.hub.recall(t, after, recallAge, b.leased)
		}
		if !fresh && !first {
			rec, pttl, fresh = b.hub.sinceNotice(t, changed)
		}
		if !fresh {
			sent := time.Now()
			rctx, cancel := context.WithTimeout(ctx, budget)
			// The watchers of the key woken by one notice share one read:
			// a read begun after the same notice sees what any of them
			// would, and a change after it brings a notice of its own.
			r, _, err := b.reading.Do(rctx, fmt.Sprintf("%s\x00%p", k.leader, changed), func() (readResult, error) {
				rec, pttl, err := b.read(rctx, resource, k)
				return readResult{rec, pttl}, err
			})
			rec, pttl = r.rec, r.pttl
			rec.Value = bytes.Clone(rec.Value)
			cancel()
			if cerr := ctx.Err(); cerr != nil {
				return election.Record{}, fmt.Errorf("redis: watch %s: %w", k.leader, cerr)
			}
			if err != nil {
				return election.Record{}, err
			}
			b.hub.remember(t, changed, rec, pttl, sent)
		}
		left := time.Until(deadline)
		if rec.Revision != after || left <= 0 {
			acted = rec.Revision != after && w != nil && turnC == nil
			return rec, nil
		}
		if w != nil && turnC == nil {
			b.hub.giveBack(t, w) // given the turn, with nothing to act on
		}
		// A record this backend's own leading session holds needs no expiry
		// timer: that session's renewals report its loss.
		if pttl > 0 && pttl+expiryMargin < left && !b.owns(rec.Session) {
			left = pttl + expiryMargin
		}
		timer.Reset(left)
		select {
		case <-changed:
			if err := b.check(); err != nil {
				return election.Record{}, err
			}
		case <-turnC:
			turnC = nil
		case <-timer.C:
		case <-ctx.Done():
			return election.Record{}, fmt.Errorf("redis: watch %s: %w", k.leader, ctx.Err())
		}
	}
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
