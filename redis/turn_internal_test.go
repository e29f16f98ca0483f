package redis

import (
	"log/slog"
	"testing"
)

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// TestTurnPassesToTheNextWaiting: a release notice wakes the candidate
// waiting longest alone; one that waits again instead of acquiring (it
// holds off) passes the turn to the next; the others wake once the
// acquisition has returned.
func TestTurnPassesToTheNextWaiting(t *testing.T) {
	h := newHub(nil, slog.New(slog.DiscardHandler))
	tp := &topic{resource: "r", events: "r:events", keyspace: "r:keyspace", ready: make(chan struct{}), wake: make(chan struct{}), active: true}
	h.topics["r"], h.byChan[tp.events], h.byChan[tp.keyspace] = tp, tp, tp
	defer h.close()
	a, b, c := h.join(tp, "a"), h.join(tp, "b"), h.join(tp, "c")
	others := h.changed(tp)

	h.notice("r:events", "released")
	if !isClosed(a.Turn()) || isClosed(b.Turn()) || isClosed(c.Turn()) || isClosed(others) {
		t.Fatal("a release notice must wake the candidate waiting longest (a), alone")
	}
	h.notice("r:keyspace", "del")
	if isClosed(others) || isClosed(b.Turn()) {
		t.Fatal("a notice during the turn woke the others")
	}

	h.leave(tp, a, true) // a returned the free record...
	h.join(tp, "a")      // ...and waits again: it holds off
	if !isClosed(b.Turn()) || isClosed(c.Turn()) || isClosed(others) {
		t.Fatal("a holder that waits again must pass the turn to the next waiting (b), alone")
	}

	h.leave(tp, b, true)
	h.turnTaken("r") // b's acquisition returned
	if !isClosed(others) || isClosed(c.Turn()) {
		t.Fatal("the others must wake once the acquisition returned, and no turn be given")
	}
}

// TestTurnEndsWithoutWaiters: a holder that gives the turn back with nobody
// else waiting wakes every watch.
func TestTurnEndsWithoutWaiters(t *testing.T) {
	h := newHub(nil, slog.New(slog.DiscardHandler))
	tp := &topic{resource: "r", events: "r:events", keyspace: "r:keyspace", ready: make(chan struct{}), wake: make(chan struct{}), active: true}
	h.topics["r"], h.byChan[tp.events], h.byChan[tp.keyspace] = tp, tp, tp
	defer h.close()
	a := h.join(tp, "a")
	others := h.changed(tp)
	h.notice("r:events", "released")
	if !isClosed(a.Turn()) || isClosed(others) {
		t.Fatal("a must be woken alone")
	}
	h.giveBack(tp, a)
	if !isClosed(others) {
		t.Fatal("a turn given back with nobody waiting must wake every watch")
	}
}
