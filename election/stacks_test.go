package election_test

import (
	"bytes"
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// What a leader's goroutines keep of their stacks for the term.

// stackBurn is how deep a store request of deepConn runs on the caller's
// stack, as an HTTP or gRPC client's does: far more than the frames an
// elector keeps while it waits.
const stackBurn = 32 << 10

// deepConn is a memory store's connection whose acquisitions and watches
// first run deep on the caller's stack, so that the goroutines of its
// electors grow their stacks as they do on a real store.
type deepConn struct {
	*memory.Conn
	waits *atomic.Int64 // blocking Watch calls begun
}

func (c deepConn) Watch(ctx context.Context, resource string, after uint64, wait time.Duration) (election.Record, error) {
	burnStack(stackBurn / 1024)
	if after != 0 {
		c.waits.Add(1)
	}
	return c.Conn.Watch(ctx, resource, after, wait)
}

// WatchRecord counts a leader's watch of its record as a wait: it waits
// without a goroutine.
func (c deepConn) WatchRecord(resource string, after uint64, changed func(election.Record, error)) func() {
	c.waits.Add(1)
	return c.Conn.WatchRecord(resource, after, changed)
}

// sharingBackend is a backend that can share its sessions.
type sharingBackend interface {
	election.Backend
	election.SessionSharer
}

// goroutineWatch is a backend without election.RecordWatcher, whatever the
// one it wraps implements: a leader on it watches its record through
// Watch, on a goroutine of its own.
type goroutineWatch struct{ sharingBackend }

func (c deepConn) NewLease(ctx context.Context, p election.LeaseParams) (election.Lease, error) {
	l, err := c.Conn.NewLease(ctx, p)
	if err != nil {
		return nil, err
	}
	return deepLease{l}, nil
}

type deepLease struct{ election.Lease }

func (l deepLease) Claim(p election.SessionParams) (election.Claim, error) {
	c, err := l.Lease.Claim(p)
	if err != nil {
		return nil, err
	}
	return deepClaim{c}, nil
}

type deepClaim struct{ election.Claim }

func (c deepClaim) Acquire(ctx context.Context) (election.Acquisition, error) {
	burnStack(stackBurn / 1024)
	return c.Claim.Acquire(ctx)
}

// burnStack uses about n KB of the caller's stack.
//
//go:noinline
func burnStack(n int) byte {
	var buf [1024]byte
	buf[n%len(buf)] = byte(n)
	if n <= 0 {
		return buf[0]
	}
	return burnStack(n-1) + buf[n%len(buf)]
}

// TestSharedSessionLeaderStacks: an elector leading on a shared session
// keeps, for its term, the stack of its handler's leader call, which runs
// on a goroutine of its own that made no store request (at most 4 KB), and,
// on a backend without RecordWatcher, the stack of its watch of the
// record, whose frames are small enough for collections to shrink what its
// store requests grew to 8 KB. On a backend with RecordWatcher the watch
// keeps no goroutine. The campaign, whose store requests grew its stack
// too, keeps none.
// (A stack shrinks by half at a collection while it uses less than a
// quarter of it, counting a reserve of the runtime: a goroutine whose
// frames pass about 3.3 KB keeps 16 KB, about 1.2 KB 8 KB.)
func TestSharedSessionLeaderStacks(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's instrumentation makes every frame larger")
	}
	t.Run("Watch", func(t *testing.T) {
		// 4 KB for the call, 8 KB for the watch, with room for the
		// session's. A campaign that waited for the term would keep 4 or
		// 8 KB more.
		testLeaderStacks(t, 13<<10, 2, func(c deepConn) election.Backend { return goroutineWatch{c} })
	})
	t.Run("WatchRecord", func(t *testing.T) {
		// 4 KB for the call, with room for the session's.
		testLeaderStacks(t, 5<<10, 1, func(c deepConn) election.Backend { return c })
	})
	t.Run("WatchRecord/returns", func(t *testing.T) {
		// A handler that returns from its leader call at once leaves the
		// leader no goroutine, and no stack: room for the session's.
		testLeaderStacks(t, 1<<10, 0, func(c deepConn) election.Backend { return c })
	})
}

// testLeaderStacks checks that n leaders on a shared session on backend
// hold at most maxPerLeader bytes of stacks, and goroutines goroutines,
// each. With goroutines 0, the handler returns from its leader calls at
// once; otherwise it blocks in them until the term ends.
func testLeaderStacks(t *testing.T, maxPerLeader int64, goroutines int, backend func(deepConn) election.Backend) {
	const n = 200
	store := memory.NewStore()
	conn := deepConn{store.Connect("p"), new(atomic.Int64)}
	beforeG := liveGoroutines()
	s, err := election.NewSharedSession(backend(conn), election.SessionOptions{TTL: 15 * time.Second})
	if err != nil {
		t.Fatalf("NewSharedSession: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close of the session: %v", err)
		}
	})
	var wg sync.WaitGroup
	wg.Add(n)
	handler := func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			wg.Done()
			if goroutines > 0 {
				<-ctx.Done() // the handler's goroutine is the leader's first
			}
		}
		return nil
	}
	before := stackInuse()
	startOn(t, s, "p", resources(n), handler)
	awaitLeaders(t, &wg, conn, n) // their watches' stacks grown
	grown := stackInuse() - before
	per := grown / n
	t.Logf("%d leaders hold %d KB of stacks, %.1f KB each", n, grown>>10, float64(grown)/n/1024)
	if per > maxPerLeader {
		t.Errorf("a leader on a shared session holds %.1f KB of stacks after collections; want at most %d KB", float64(grown)/n/1024, maxPerLeader>>10)
	}
	// The session's own goroutines (its renewals) come on top.
	const session = 10
	if g := liveGoroutines() - beforeG; g > goroutines*n+session {
		t.Errorf("%d leaders on a shared session hold %d goroutines, %.2f each; want %d each", n, g, float64(g)/n, goroutines)
	}
}

// stackInuse returns the bytes of goroutine stacks after enough
// collections to shrink every stack as far as it goes.
func stackInuse() int64 {
	for range 6 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.StackInuse)
}

// awaitLeaders waits until wg is done, as each of n electors on conn has
// led, and each leader's watch of its record waits.
func awaitLeaders(t *testing.T, wg *sync.WaitGroup, conn deepConn, n int64) {
	t.Helper()
	led := make(chan struct{})
	go func() {
		wg.Wait()
		close(led)
	}()
	select {
	case <-led:
	case <-time.After(time.Minute):
		t.Fatalf("not every elector led within a minute")
	}
	for deadline := time.Now().Add(time.Minute); conn.waits.Load() < n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d leaders watch their record after a minute", conn.waits.Load(), n)
		}
	}
}

// liveGoroutines counts the live goroutines of the program, other than the
// runtime's own, in a stop-the-world dump: runtime.NumGoroutine, read while
// the runtime starts or ends goroutines of its own (as during a garbage
// collection), can count dozens that no elector holds.
func liveGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte("\ngoroutine ")) + 1
		}
		buf = make([]byte, 2*len(buf))
	}
}
