package redis

import (
	"context"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/turn"
)

// turnBound is how long the candidate woken alone by a release notice may
// take to read the record and acquire before the other waiting candidates
// are woken anyway.
const turnBound = 500 * time.Millisecond

// The candidates of a backend that follow one resource wait in its topic's
// line (WatchTurn). A release notice wakes the one that has waited longest,
// which reads the record and acquires; the others wake once its Acquire has
// returned without the leadership, or, when it leads, once its leader call
// begins (TurnTaken) (or it waits again, or its Watch fails, or turnBound
// passes), and share one read of what it left. A release among N
// candidates of one process then wakes one goroutine, not N, before the
// next leader's handler runs.

// WatchTurn is Backend.Watch of the session's resource, by its candidate,
// which waits in line: see the turn comment above.
func (s *session) WatchTurn(ctx context.Context, after uint64, wait time.Duration) (election.Record, error) {
	return s.b.watch(ctx, s.resource, after, wait, s.token)
}

// TurnTaken ends the turn on the session's resource, if one is on: the
// candidate woken alone did not lead, or its leader call is about to begin
// (see election.TurnWatcher).
func (s *session) TurnTaken() { s.b.hub.turnTaken(s.resource) }

var _ election.TurnWatcher = (*session)(nil)

// released reports whether a notice on one of t's channels announces that
// the leader key was deleted or expired.
func (t *topic) released(ch, payload string) bool {
	if ch == t.events {
		return payload == "released"
	}
	return payload == "del" || payload == "expired" || payload == "evicted"
}

// giveTurn gives the turn to the candidate waiting longest, if a release
// notice and not a turn is on, and reports whether the notice is handled:
// the others' wake channel is held back until the turn ends. While a turn
// is on, every notice is held back so. The caller holds hub.mu.
func (h *hub) giveTurn(t *topic, ch, payload string) bool {
	if !t.line.On() && (!t.released(ch, payload) || !t.line.Give("", turnBound, func() { h.endTurn(t) })) {
		return false
	}
	t.held = append(t.held, t.wake)
	t.wake = make(chan struct{})
	return true
}

// join adds candidate id to t's line; nil without a topic, or once the hub
// is closed. A candidate that was given the turn and waits again instead of
// acting (it holds off after a term of its own) passes the turn on.
func (h *hub) join(t *topic, id string) *turn.Waiter {
	if t == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	if t.line.HeldBy(id) {
		h.passTurn(t)
	}
	return t.line.Join(id)
}

// leave takes w out of t's line. A call that held the turn and did not
// return the record it was woken for (acted false) passes the turn on.
func (h *hub) leave(t *topic, w *turn.Waiter, acted bool) {
	if w == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t.line.Leave(w)
	if t.line.Holds(w) && !acted {
		h.passTurn(t)
	}
}

// giveBack passes the turn on if w holds it: it was given the turn and
// found nothing to act on.
func (h *hub) giveBack(t *topic, w *turn.Waiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.line.Holds(w) {
		h.passTurn(t)
	}
}

// passTurn gives the turn on, from a holder that does not act on it, to the
// candidate waiting longest, or wakes every Watch when none waits. The
// holder's read, if any, is fresh: the next holder reuses it. The caller
// holds hub.mu.
func (h *hub) passTurn(t *topic) {
	t.line.End()
	if !t.line.Give("", turnBound, func() { h.endTurn(t) }) {
		t.wakeUp()
	}
}

// endTurn ends t's turn, if one is on, and wakes every Watch of t's
// resource.
func (h *hub) endTurn(t *topic) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if t.line.On() {
		t.wakeUp()
	}
}

// turnTaken ends the turn on resource, if one is on: the candidate woken
// alone failed to acquire, or learnt that another did, or leads and its
// leader call is about to begin.
func (h *hub) turnTaken(resource string) {
	h.mu.Lock()
	t := h.topics[resource]
	h.mu.Unlock()
	if t != nil {
		h.endTurn(t)
	}
}
