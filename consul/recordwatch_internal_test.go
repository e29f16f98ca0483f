package consul

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/goleak"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
)

// errDown is the error of a request a flaky transport refuses.
var errDown = errors.New("refused by the test")

// flaky refuses every request while down is set.
type flaky struct {
	next http.RoundTripper
	down atomic.Bool
}

func (f *flaky) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.down.Load() {
		return nil, errDown
	}
	return f.next.RoundTrip(r)
}

// told is what a WatchRecord call passed to its function.
type told struct {
	rec election.Record
	err error
	at  time.Time
}

// watchRecord begins a WatchRecord call of resource from after, whose
// function sends what it is told on the returned channel.
func watchRecord(b *Backend, resource string, after uint64) (<-chan told, func()) {
	ch := make(chan told, 16)
	stop := b.WatchRecord(resource, after, func(r election.Record, err error) {
		ch <- told{r, err, time.Now()}
	})
	return ch, stop
}

// recordCounts returns the WatchRecord calls of root's group on a listing,
// and on loops of their own.
func recordCounts(b *Backend, root string) (listed, loops int) {
	b.watches.mu.Lock()
	defer b.watches.mu.Unlock()
	g := b.watches.groups[root]
	if g == nil {
		return 0, 0
	}
	return len(g.records), len(g.loops)
}

// expectTold returns what ch is told within 5 s.
func expectTold(t *testing.T, ch <-chan told, what string) told {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatalf("not told %s within 5 s", what)
	}
	return told{}
}

// expectError expects ch to be told an error wrapping want within 5 s,
// after a change at most.
func expectError(t *testing.T, ch <-chan told, want error) {
	t.Helper()
	for range 2 {
		r := expectTold(t, ch, "the failure")
		if r.err != nil {
			if !errors.Is(r.err, want) {
				t.Fatalf("told %v; want %v", r.err, want)
			}
			return
		}
	}
	t.Fatal("told two changes; want an error")
}

// seq returns the integers from i to j, j excluded.
func seq(i, j int) []int {
	var s []int
	for ; i < j; i++ {
		s = append(s, i)
	}
	return s
}

// expectNothing checks that none of chs is told anything within d.
func expectNothing(t *testing.T, d time.Duration, chs ...<-chan told) {
	t.Helper()
	time.Sleep(d)
	for i, ch := range chs {
		select {
		case r := <-ch:
			t.Errorf("watch %d told %+v; want nothing", i, r)
		default:
		}
	}
}

// TestWatchRecord: a WatchRecord call, on a loop of its own (few keys
// watched) or on its group's listing (more than ListThreshold), is told a
// change of its record, once and at once, with the new holder's record,
// and nothing of the other keys; nothing once stopped (stop may be called
// again); an error, once, when its reads fail, which ends it; and, on a
// listing, an error at Close. Every call left, no group is left and no
// goroutine.
func TestWatchRecord(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	for _, mode := range []struct {
		name string
		n    int
	}{{"loop", 3}, {"listed", 2 * ListThreshold}} {
		t.Run(mode.name, func(t *testing.T) { testWatchRecord(t, srv, mode.name, mode.n) })
	}
}

func testWatchRecord(t *testing.T, srv *testserver.ConsulServer, mode string, n int) {
	client, tr := countingClient(t, srv)
	f := &flaky{next: tr.next}
	tr.next = f
	adminTr := &http.Transport{}
	defer adminTr.CloseIdleConnections()
	admin, err := api.NewClient(&api.Config{Address: srv.Addr, HttpClient: &http.Client{Transport: adminTr}})
	if err != nil {
		t.Fatal(err)
	}
	ignore := goleak.IgnoreCurrent()
	b, err := NewBackend(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	resources := make([]string, n)
	for i := range resources {
		resources[i] = fmt.Sprintf("rw-%s-%02d", mode, i)
	}
	s1, s2 := newTestSession(t, admin), newTestSession(t, admin)
	holdKeys(t, admin, s1, "old-", resources)
	ctx := context.Background()
	recs := make([]election.Record, n)
	chs := make([]<-chan told, n)
	stops := make([]func(), n)
	for i, r := range resources {
		if recs[i], err = b.Watch(ctx, r, 0, 0); err != nil || recs[i].Session != s1 {
			t.Fatalf("Watch(%s, 0) = %+v, %v", r, recs[i], err)
		}
		chs[i], stops[i] = watchRecord(b, r, recs[i].Revision)
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	waitFor(t, "the calls on "+mode+"s", func() bool {
		listed, loops := recordCounts(b, "service/")
		if mode == "loop" {
			return loops == n && listed == 0
		}
		return listed == n && loops == 0
	})
	expectNothing(t, 200*time.Millisecond, chs...)

	// A change is told at once, to its key's call alone.
	term := handOver(t, admin, DefaultKey(resources[0]), s1, s2, "new")
	changed := time.Now()
	r := expectTold(t, chs[0], "the change")
	if r.err != nil || r.rec.Session != s2 || r.rec.LeaderID != "new" || r.rec.Term != term || r.rec.Revision != term {
		t.Fatalf("told %+v; want session %s, leader new, term %d", r, s2, term)
	}
	if took := r.at.Sub(changed); took > slowdown*promptly {
		t.Errorf("the change was told %v after it was made", took)
	}
	expectNothing(t, 200*time.Millisecond, chs...)

	// A call stopped is told nothing more.
	stops[1]()
	stops[1]()
	handOver(t, admin, DefaultKey(resources[1]), s1, s2, "new")
	expectNothing(t, 500*time.Millisecond, chs...)

	// Reads failing end the calls reading with an error, once: on a
	// loop, the call whose key changed, whose read of the new holder's
	// term fails; on a listing, every call left, at the next round.
	f.down.Store(true)
	handOver(t, admin, DefaultKey(resources[2]), s1, s2, "new")
	failing, left := []int{2}, 1
	if mode == "listed" {
		failing, left = append([]int{0}, seq(2, n)...), 0
	}
	for _, i := range failing {
		expectError(t, chs[i], errDown)
	}
	if listed, loops := recordCounts(b, "service/"); listed+loops != left {
		t.Errorf("%d calls on listings and %d on loops after the failure; want %d", listed, loops, left)
	}
	f.down.Store(false)
	expectNothing(t, 500*time.Millisecond, chs...)
	stops[0]()
	waitFor(t, "the groups to end", func() bool {
		b.watches.mu.Lock()
		defer b.watches.mu.Unlock()
		return len(b.watches.groups) == 0
	})

	if mode == "listed" {
		// Close ends the calls on a listing with an error.
		for i, r := range resources {
			rec, err := b.Watch(ctx, r, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			chs[i], stops[i] = watchRecord(b, r, rec.Revision)
		}
		waitFor(t, "the calls on the listing", func() bool { listed, _ := recordCounts(b, "service/"); return listed == n })
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		for i := range chs {
			if r := expectTold(t, chs[i], "Close"); !errors.Is(r.err, errWatchesClosed) {
				t.Fatalf("watch %d told %+v at Close; want the backend closed", i, r)
			}
		}
		expectNothing(t, 100*time.Millisecond, chs...)
	}
	for _, stop := range stops {
		stop()
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	adminTr.CloseIdleConnections()
	tr.settle(t, ignore)
}

// TestWatchRecordNoGoroutinePerCall: 100 WatchRecord calls of keys of one
// root run no goroutine each: the group's one recursive read tells them,
// the loops of the first calls having moved to it.
func TestWatchRecordNoGoroutinePerCall(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	client, tr := countingClient(t, srv)
	ignore := goleak.IgnoreCurrent()
	b, err := NewBackend(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 100
	resources := make([]string, n)
	for i := range resources {
		resources[i] = fmt.Sprintf("few-%03d", i)
	}
	s1 := newTestSession(t, client)
	holdKeys(t, client, s1, "old-", resources)
	ctx := context.Background()
	recs := make([]election.Record, n)
	for i, r := range resources {
		if recs[i], err = b.Watch(ctx, r, 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	before := runtime.NumGoroutine()
	stops := make([]func(), n)
	for i, r := range resources {
		stops[i] = b.WatchRecord(r, recs[i].Revision, func(r election.Record, err error) {
			t.Errorf("told %+v, %v while nothing changed", r, err)
		})
	}
	waitFor(t, "every call on the listing", func() bool { listed, loops := recordCounts(b, "service/"); return listed == n && loops == 0 })
	// The group's read, and a connection's two goroutines for it, once
	// the loops' goroutines have returned. Counted until then: a count
	// taken while the runtime starts or ends goroutines of its own can be
	// dozens too high for a moment.
	const most = 8
	var g int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if g = runtime.NumGoroutine() - before; g <= most || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%d WatchRecord calls: %d goroutines more", n, g)
	if g > most {
		t.Errorf("%d WatchRecord calls run %d goroutines; want at most %d in all", n, g, most)
	}
	for _, stop := range stops {
		stop()
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	tr.settle(t, ignore)
}

// TestWatchRecordNotHeldBack: a leader's watch of its record is told of a
// release at once, while the candidates of the backend that wait in the
// key's line are answered in turn: the one given the turn at once, the
// other once the turn ends (turnBound, as the first does not acquire).
func TestWatchRecordNotHeldBack(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	client, tr := countingClient(t, srv)
	ignore := goleak.IgnoreCurrent()
	b, err := NewBackend(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const resource = "held"
	s1 := newTestSession(t, client)
	holdKeys(t, client, s1, "old-", []string{resource})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec, err := b.Watch(ctx, resource, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	returned := make(chan time.Time, 2)
	for _, id := range []string{"c1", "c2"} {
		s, err := b.NewSession(ctx, election.SessionParams{Resource: resource, ID: id, TTL: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close(context.Background())
		go func() {
			_, err := s.(election.TurnWatcher).WatchTurn(ctx, rec.Revision, 20*time.Second)
			if err != nil {
				t.Errorf("WatchTurn: %v", err)
			}
			returned <- time.Now()
		}()
	}
	ch, stop := watchRecord(b, resource, rec.Revision)
	defer stop()
	time.Sleep(300 * time.Millisecond) // every call waits
	ok, resp, _, err := client.Txn().Txn(api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVUnlock, Key: DefaultKey(resource), Session: s1}}}, nil)
	if err != nil || !ok {
		t.Fatalf("release: %v %v", err, resp)
	}
	r := expectTold(t, ch, "the release")
	if r.err != nil || !r.rec.Free() {
		t.Fatalf("told %+v; want the record freed", r)
	}
	first, second := <-returned, <-returned
	t.Logf("the watch was told %v before the candidate given the turn returned, %v before the other",
		first.Sub(r.at).Round(time.Millisecond), second.Sub(r.at).Round(time.Millisecond))
	if second.Sub(first) < turnBound/2 {
		t.Fatalf("the candidates returned %v apart: the line held nothing back, the test proves nothing", second.Sub(first))
	}
	if late := r.at.Sub(first); late > turnBound/2 {
		t.Errorf("the watch was told %v after the candidate given the turn returned: held back by the line", late)
	}
	stop()
	cancel()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	tr.settle(t, ignore)
}
