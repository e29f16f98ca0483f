package election_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/benchscale"
	"github.com/consul-leader/consul-leader/memory"
)

// TestSharedSessionLeaderHeap: what an elector leading on a shared session
// keeps on the heap for its term, with the in-memory store's state of its
// record, is its engine, dispatcher, campaign, term, contexts and its
// registration with the store's watch, and nothing more; a handler that
// blocks in its leader call keeps that call's event and the timer that
// warns of an overrun too. The goroutines' own descriptors, which the
// runtime reuses, and their stacks (see TestSharedSessionLeaderStacks) are
// not counted.
func TestSharedSessionLeaderHeap(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory makes every allocation larger")
	}
	// Measured at 2,645-2,686 and 3,415-3,476 bytes from run to run; the
	// bounds fail when about 45 and 65 bytes more stay per leader (a
	// channel, a context, a timer, or a list of children on a context of
	// the elector's, do; and so do a run and a dispatcher allocated apart
	// from the engine).
	t.Run("returns", func(t *testing.T) {
		testLeaderHeap(t, 2730, func(ctx context.Context) {})
	})
	t.Run("blocks", func(t *testing.T) {
		testLeaderHeap(t, 3540, func(ctx context.Context) { <-ctx.Done() })
	})
}

// testLeaderHeap checks that n leaders on a shared session, whose handler
// calls lead in its leader calls, hold at most maxPerLeader bytes of heap
// each.
func testLeaderHeap(t *testing.T, maxPerLeader int64, lead func(ctx context.Context)) {
	const n = 1000
	store := memory.NewStore()
	conn := deepConn{store.Connect("p"), new(atomic.Int64)}
	s, err := election.NewSharedSession(conn, election.SessionOptions{TTL: 15 * time.Second})
	if err != nil {
		t.Fatalf("NewSharedSession: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close of the session: %v", err)
		}
	})
	var wg sync.WaitGroup
	handler := func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			wg.Done()
			lead(ctx)
		}
		return nil
	}
	els := make([]*election.Elector, 0, n)
	t.Cleanup(func() {
		for _, el := range els {
			if err := el.Close(context.Background()); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	})
	rs := resources(n)
	reuseGoroutines(3 * n)
	before := benchscale.HeapLive()
	wg.Add(n)
	for _, r := range rs {
		el, err := election.New(conn, election.Options{Resource: r, ID: "p", Session: s})
		if err != nil {
			t.Fatalf("New %s: %v", r, err)
		}
		if err := el.Start(context.Background(), handler); err != nil {
			t.Fatalf("Start %s: %v", r, err)
		}
		els = append(els, el)
	}
	awaitLeaders(t, &wg, conn, n)
	grown := benchscale.HeapLive() - before
	t.Logf("%d leaders hold %d KB of heap, %.2f KB each", n, grown>>10, float64(grown)/n/1024)
	if per := grown / n; per > maxPerLeader {
		t.Errorf("a leader on a shared session holds %.2f KB of heap; want at most %.2f KB", float64(grown)/n/1024, float64(maxPerLeader)/1024)
	}
}

// reuseGoroutines starts and ends n goroutines, whose descriptors the
// runtime then reuses for the next ones: a measure of the heap that
// follows does not count them, whether or not goroutines ran before.
func reuseGoroutines(n int) {
	var started, end sync.WaitGroup
	started.Add(n)
	end.Add(1)
	var ended sync.WaitGroup
	ended.Add(n)
	for range n {
		go func() {
			defer ended.Done()
			started.Done()
			end.Wait()
		}()
	}
	started.Wait()
	end.Done()
	ended.Wait()
}
