package redis

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/election"
)

// TestRecordWatchNotHeldBackByTurn: a release notice that gives the turn
// to a following candidate of the resource, holding back the others'
// watches, does not hold back the record watch of its leader: its read is
// made, and the change told, while the turn is still on.
func TestRecordWatchNotHeldBackByTurn(t *testing.T) {
	h := newHub(nil, slog.New(slog.DiscardHandler))
	var reads atomic.Int64
	h.read = func(context.Context, *topic, chan struct{}) (election.Record, error) {
		reads.Add(1)
		return freeRecord(7), nil
	}
	h.maxReaders = 1
	tp := &topic{resource: "r", events: "r:events", keyspace: "r:keyspace", ready: make(chan struct{}), wake: make(chan struct{}), active: true, hub: h}
	h.topics["r"], h.byChan[tp.events], h.byChan[tp.keyspace] = tp, tp, tp
	defer h.close()
	told := make(chan error, 4) // nil for the record expected
	w := &recordWatch{after: 1, changed: func(r election.Record, err error) {
		if err == nil && r.Revision != freeRecord(7).Revision {
			err = fmt.Errorf("told %+v", r)
		}
		told <- err
	}}
	h.mu.Lock()
	tp.records = append(tp.records, w)
	h.mu.Unlock()
	a := h.join(tp, "a")
	others := h.changed(tp)

	h.notice("r:events", "released")
	if !isClosed(a.Turn()) || isClosed(others) {
		t.Fatal("a release notice must wake the candidate waiting longest (a), alone")
	}
	select {
	case err := <-told:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(turnBound / 2):
		t.Fatalf("the leader's record watch was not told within %v of the notice (%d reads)", turnBound/2, reads.Load())
	}
	h.mu.Lock()
	on := tp.line.On()
	h.mu.Unlock()
	if !on || isClosed(others) {
		t.Fatal("the turn ended before the record watch was told: it was held back")
	}
}

// TestRecordReadersBounded: the reads for record watches run on at most
// maxReaders goroutines at a time, which end once no read is due.
func TestRecordReadersBounded(t *testing.T) {
	h := newHub(nil, slog.New(slog.DiscardHandler))
	var inflight, most atomic.Int64
	release := make(chan struct{})
	h.read = func(context.Context, *topic, chan struct{}) (election.Record, error) {
		n := inflight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		inflight.Add(-1)
		return freeRecord(7), nil
	}
	h.maxReaders = 2
	defer h.close()
	const n = 10
	told := make(chan struct{}, n)
	h.mu.Lock()
	for i := range n {
		r := fmt.Sprintf("r%d", i)
		tp := &topic{resource: r, events: r + ":events", keyspace: r + ":keyspace", ready: make(chan struct{}), wake: make(chan struct{}), active: true, hub: h}
		h.topics[r], h.byChan[tp.events], h.byChan[tp.keyspace] = tp, tp, tp
		tp.records = []*recordWatch{{after: 1, changed: func(_ election.Record, err error) {
			if err == nil {
				told <- struct{}{}
			}
		}}}
		tp.wakeUp()
	}
	h.mu.Unlock()
	time.Sleep(100 * time.Millisecond)
	if m := most.Load(); m != 2 {
		t.Errorf("%d reads at a time with 10 due; want maxReaders, 2", m)
	}
	close(release)
	for i := range n {
		select {
		case <-told:
		case <-time.After(2 * time.Second):
			t.Fatalf("%d of %d record watches told within 2 s", i, n)
		}
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		h.mu.Lock()
		readers := h.readers
		h.mu.Unlock()
		if readers == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d readers still run with no read due", readers)
		}
	}
	if m := most.Load(); m > 2 {
		t.Errorf("%d reads at a time; want at most 2", m)
	}
}

// TestRecordWatchToldOnlyReadsSentAfterIt: a record watch begun while a
// read for the others is in flight is not told that read, which may be
// older than the revision it began with, but reads on its own.
func TestRecordWatchToldOnlyReadsSentAfterIt(t *testing.T) {
	h := newHub(nil, slog.New(slog.DiscardHandler))
	sent, release := make(chan struct{}, 4), make(chan struct{})
	var reads atomic.Int64
	h.read = func(context.Context, *topic, chan struct{}) (election.Record, error) {
		n := reads.Add(1)
		sent <- struct{}{}
		if n == 1 {
			<-release
			return election.Record{Revision: 5}, nil // before the second watch began
		}
		return election.Record{Revision: 9}, nil
	}
	h.maxReaders = 1
	tp := &topic{resource: "r", events: "r:events", keyspace: "r:keyspace", ready: make(chan struct{}), wake: make(chan struct{}), active: true, hub: h}
	h.topics["r"], h.byChan[tp.events], h.byChan[tp.keyspace] = tp, tp, tp
	defer h.close()
	told1, told2 := make(chan uint64, 4), make(chan uint64, 4)
	watch := func(after uint64, told chan uint64) {
		h.mu.Lock()
		tp.records = append(tp.records, &recordWatch{after: after, changed: func(r election.Record, err error) {
			if err == nil {
				told <- r.Revision
			}
		}})
		h.queueLocked(tp)
		h.mu.Unlock()
	}
	watch(1, told1)
	<-sent
	watch(9, told2) // begun at revision 9, while the first read is in flight
	close(release)
	<-sent // its own read
	for _, want := range []uint64{5, 9} {
		select {
		case got := <-told1:
			if got != want {
				t.Fatalf("the first watch was told revision %d, want %d", got, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("the first watch was not told revision %d", want)
		}
	}
	select {
	case got := <-told2:
		t.Fatalf("the second watch, begun at revision 9, was told revision %d read before it began", got)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestRecordReadersHalfMaxRequests: a Backend reads records for its
// WatchRecord calls on at most half of MaxRequests goroutines, and on one
// at least, leaving the other requests slots.
func TestRecordReadersHalfMaxRequests(t *testing.T) {
	for _, c := range []struct{ maxRequests, readers int }{{0, DefaultMaxRequests / 2}, {1, 1}, {3, 1}, {10, 5}} {
		client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
		b, err := NewBackend(client, BackendOptions{MaxRequests: c.maxRequests, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if b.hub.maxReaders != c.readers {
			t.Errorf("MaxRequests %d: %d readers, want %d", c.maxRequests, b.hub.maxReaders, c.readers)
		}
		_ = b.Close()
		_ = client.Close()
	}
}
