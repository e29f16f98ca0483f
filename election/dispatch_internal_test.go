package election

import (
	"context"
	"log/slog"
	"sync"
	"testing"
)

// TestDispatcherQueueIsBounded: under a busy handler, thousands of follower
// notifications leave at most one waiting, after a step-down notice that is
// never replaced; a leader call comes after them all.
func TestDispatcherQueueIsBounded(t *testing.T) {
	h := newBlockingHandler()
	d := h.start()
	ctx := context.Background()
	follower := func(term uint64) event {
		l := Leadership{LeaderID: "x", Term: term}
		return event{ctx: ctx, l: l, key: noticeOf(l, "s")}
	}
	d.enqueue(follower(1))
	<-h.started
	d.enqueue(event{ctx: ctx, l: Leadership{Term: 2}, key: noticeOf(Leadership{Term: 2}, ""), keep: true})
	longest := 0
	for term := uint64(3); term < 10_000; term++ {
		d.enqueue(follower(term))
		d.mu.Lock()
		longest = max(longest, len(d.queue))
		d.mu.Unlock()
	}
	if longest > 2 {
		t.Errorf("queue grew to %d events under a busy handler; want at most 2", longest)
	}
	close(h.unblock)
	done := make(chan struct{})
	d.callHere(&event{ctx: ctx, l: Leadership{IsLeader: true, Term: 10_000}, done: done})
	<-done
	d.close()
	<-d.done
	want := []uint64{1, 2, 9_999, 10_000}
	var calls []uint64
	for _, l := range h.told() {
		calls = append(calls, l.Term)
	}
	if len(calls) != len(want) {
		t.Fatalf("handler calls for terms %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Fatalf("handler calls for terms %v, want %v", calls, want)
		}
	}
}

// TestDispatcherDropsRepeat: a notification that, once the one before it
// is replaced, would repeat what the handler is being told is dropped.
func TestDispatcherDropsRepeat(t *testing.T) {
	h := newBlockingHandler()
	d := h.start()
	ev := func(id string) event {
		l := Leadership{LeaderID: id, Term: 1}
		return event{ctx: context.Background(), l: l, key: noticeOf(l, id)}
	}
	d.enqueue(ev("x"))
	<-h.started
	d.enqueue(ev(""))
	d.enqueue(ev("x"))
	close(h.unblock)
	d.close()
	<-d.done
	var calls []string
	for _, l := range h.told() {
		calls = append(calls, l.LeaderID)
	}
	if len(calls) != 1 {
		t.Errorf("handler told %q; want x once: the change away and back was replaced", calls)
	}
}

// blockingHandler records what it is told, and blocks its first call until
// unblock is closed, so that a test can queue events behind a busy handler.
type blockingHandler struct {
	started, unblock chan struct{}

	mu    sync.Mutex
	calls []Leadership
}

func newBlockingHandler() *blockingHandler {
	return &blockingHandler{started: make(chan struct{}), unblock: make(chan struct{})}
}

// start returns a running dispatcher that calls h.
func (h *blockingHandler) start() *dispatcher {
	d := newDispatcher(func(_ context.Context, l Leadership) error {
		h.mu.Lock()
		h.calls = append(h.calls, l)
		first := len(h.calls) == 1
		h.mu.Unlock()
		if first {
			close(h.started)
			<-h.unblock
		}
		return nil
	}, func() *slog.Logger { return slog.New(slog.DiscardHandler) })
	return d
}

// told returns the handler's calls so far.
func (h *blockingHandler) told() []Leadership {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Leadership(nil), h.calls...)
}

// TestDispatcherIdleKeepsNoQueue: once the handler has been told every
// event, the dispatcher keeps no array of events, as an elector that
// nothing happens to (one of thousands of leaders) must not.
func TestDispatcherIdleKeepsNoQueue(t *testing.T) {
	h := newBlockingHandler()
	d := h.start()
	ctx := context.Background()
	l := Leadership{LeaderID: "x", Term: 1}
	d.enqueue(event{ctx: ctx, l: l, key: noticeOf(l, "s")})
	<-h.started
	close(h.unblock)
	done := make(chan struct{})
	d.callHere(&event{ctx: ctx, l: Leadership{IsLeader: true, Term: 2}, done: done})
	<-done
	d.mu.Lock()
	q := d.queue
	d.mu.Unlock()
	if q != nil { // a slice of no capacity may still point into the array
		t.Errorf("an idle dispatcher keeps an array of events (capacity %d); want none", cap(q))
	}
	d.close()
	<-d.done
}
