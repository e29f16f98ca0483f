package redis_test

import (
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

// told is what a WatchRecord call passed to its function.
type told struct {
	rec election.Record
	err error
}

// watchRecord begins a WatchRecord call of resource on b whose function
// sends what it is told to the returned channel.
func watchRecord(b *redis.Backend, resource string, after uint64) (<-chan told, func()) {
	ch := make(chan told, 16)
	stop := b.WatchRecord(resource, after, func(rec election.Record, err error) {
		ch <- told{rec, err}
	})
	return ch, stop
}

// expectTold returns what ch is told within d, and fails t if nothing is.
func expectTold(t *testing.T, ch <-chan told, d time.Duration, what string) told {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(d):
		t.Fatalf("not told %s within %v", what, d)
	}
	return told{}
}

// expectSilent fails t if ch is told anything within d.
func expectSilent(t *testing.T, ch <-chan told, d time.Duration, when string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s: told %+v, want nothing", when, r)
	case <-time.After(d):
	}
}

// TestWatchRecordTellsChanges: a WatchRecord call is told nothing while
// its record keeps the revision it began with, and each change of
// revision once: the release, then another session's acquisition; once
// stopped (stop may be called twice) it is told nothing more.
func TestWatchRecordTellsChanges(t *testing.T) {
	srv := startRedis(t, srvOpts())
	b := backend(t, client(t, srv.Addr()), redis.BackendOptions{})
	ctx := ctxT(t, 30*time.Second)
	sa := session(t, b, "res", "a", 10*time.Second)
	held := acquire(t, sa)
	ch, stop := watchRecord(b, "res", held.Revision)
	expectSilent(t, ch, 300*time.Millisecond, "record unchanged")

	if err := sa.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r := expectTold(t, ch, 2*time.Second, "the release")
	if r.err != nil || !r.rec.Free() {
		t.Fatalf("told %+v, want the record freed", r)
	}
	sb := session(t, b, "res", "b", 10*time.Second)
	acq := acquire(t, sb)
	r = expectTold(t, ch, 2*time.Second, "the acquisition")
	if r.err != nil || r.rec.Session != acq.Session || r.rec.Revision != acq.Revision {
		t.Fatalf("told %+v, want b's record %+v", r, acq.Record)
	}
	expectSilent(t, ch, 200*time.Millisecond, "after the acquisition")
	stop()
	stop()
	if err := sb.Close(ctx); err != nil {
		t.Fatal(err)
	}
	expectSilent(t, ch, 500*time.Millisecond, "stopped, after the release")
}

// TestWatchRecordFailsOnce: a WatchRecord call whose read fails (the
// server is gone) is told the error once, and nothing after; one begun as
// the Backend closes is told election.ErrClosed, and one begun after,
// before WatchRecord returns.
func TestWatchRecordFailsOnce(t *testing.T) {
	srv := startRedis(t, srvOpts())
	b := backend(t, client(t, srv.Addr()), redis.BackendOptions{})
	held := acquire(t, session(t, b, "res", "a", 10*time.Second))
	ch, stop := watchRecord(b, "res", held.Revision)
	defer stop()
	expectSilent(t, ch, 300*time.Millisecond, "record unchanged")
	srv.Kill()
	r := expectTold(t, ch, 5*time.Second, "the failure")
	if r.err == nil {
		t.Fatalf("told %+v, want an error", r)
	}
	t.Logf("told %v", r.err)
	expectSilent(t, ch, time.Second, "after the failure")

	srv.Restart()
	ch, stop = watchRecord(b, "res", held.Revision)
	defer stop()
	r = expectTold(t, ch, 5*time.Second, "the record lost in the restart")
	if r.err != nil || !r.rec.Free() {
		t.Fatalf("told %+v, want the record free", r)
	}
	after := r.rec.Revision
	expectSilent(t, ch, 300*time.Millisecond, "record unchanged")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if r := expectTold(t, ch, time.Second, "the Close"); !errors.Is(r.err, election.ErrClosed) {
		t.Fatalf("told %+v at Close, want ErrClosed", r)
	}
	ch, stop = watchRecord(b, "res", after)
	defer stop()
	select {
	case r := <-ch:
		if !errors.Is(r.err, election.ErrClosed) {
			t.Fatalf("told %+v after Close, want ErrClosed", r)
		}
	default:
		t.Fatal("a WatchRecord call begun after Close was not told at once")
	}
	expectSilent(t, ch, 100*time.Millisecond, "after ErrClosed")
}

// TestWatchRecordStopWaitsForChanged: stop returns only once a call of
// the function it ends has returned.
func TestWatchRecordStopWaitsForChanged(t *testing.T) {
	srv := startRedis(t, srvOpts())
	b := backend(t, client(t, srv.Addr()), redis.BackendOptions{})
	ctx := ctxT(t, 10*time.Second)
	s := session(t, b, "res", "a", 10*time.Second)
	held := acquire(t, s)
	entered, running := make(chan struct{}), make(chan bool, 1)
	var inCall atomic.Bool
	stop := b.WatchRecord("res", held.Revision, func(election.Record, error) {
		inCall.Store(true)
		close(entered)
		time.Sleep(300 * time.Millisecond)
		inCall.Store(false)
	})
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(2 * time.Second):
		t.Fatal("not told the release within 2 s")
	}
	go func() {
		stop()
		running <- inCall.Load()
	}()
	if <-running {
		t.Fatal("stop returned while the function was running")
	}
}

// TestWatchRecordKeepsNoGoroutine: 100 WatchRecord calls, of 100
// resources, hold no goroutine of their own once their reads are done,
// and each is still told a change of its record.
func TestWatchRecordKeepsNoGoroutine(t *testing.T) {
	srv := startRedis(t, srvOpts())
	b := backend(t, client(t, srv.Addr()), redis.BackendOptions{})
	const n = 100
	resources := make([]string, n)
	revs := make([]uint64, n)
	for i := range resources {
		resources[i] = fmt.Sprintf("quiet-%03d", i)
		revs[i] = read(t, b, resources[i]).Revision
	}
	base := runtime.NumGoroutine()
	chans := make([]<-chan told, n)
	for i, r := range resources {
		ch, stop := watchRecord(b, r, revs[i])
		defer stop()
		chans[i] = ch
	}
	// The subscription's receive loop, and room for the client's own.
	const slack = 3
	var g int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if g = runtime.NumGoroutine() - base; g <= slack || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%d WatchRecord calls: %d goroutines more", n, g)
	if g > slack {
		t.Errorf("%d WatchRecord calls hold %d goroutines; want at most %d in all", n, g, slack)
	}
	for i, ch := range chans {
		select {
		case r := <-ch:
			t.Fatalf("%s: told %+v, want nothing", resources[i], r)
		default:
		}
	}
	acq := acquire(t, session(t, b, resources[n/2], "a", 10*time.Second))
	r := expectTold(t, chans[n/2], 2*time.Second, "the acquisition")
	if r.err != nil || r.rec.Revision != acq.Revision {
		t.Fatalf("told %+v, want %+v", r, acq.Record)
	}
}

// TestWatchRecordReadsAfterLostSubscription: a WatchRecord call whose
// record changed without a notice (overwritten from outside, on a server
// without keyspace events) is told the change once the subscription's
// connection is lost, since notices may have been lost with it.
func TestWatchRecordReadsAfterLostSubscription(t *testing.T) {
	srv := startRedis(t, srvOpts())
	admin := client(t, srv.Addr())
	b := backend(t, client(t, srv.Addr()), redis.BackendOptions{})
	ctx := ctxT(t, 10*time.Second)
	held := acquire(t, session(t, b, "res", "a", 10*time.Second))
	ch, stop := watchRecord(b, "res", held.Revision)
	defer stop()
	expectSilent(t, ch, 300*time.Millisecond, "record unchanged")
	if err := admin.Set(ctx, leaderKey, "0123456789abcdef0123456789abcdef\n999\nrogue\nx", 10*time.Second).Err(); err != nil {
		t.Fatal(err)
	}
	expectSilent(t, ch, 300*time.Millisecond, "record overwritten without a notice")
	if err := admin.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	r := expectTold(t, ch, 3*time.Second, "the overwritten record after the subscription was lost")
	if r.err != nil || r.rec.LeaderID != "rogue" {
		t.Fatalf("told %+v, want the rogue record", r)
	}
}
