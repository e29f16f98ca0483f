package consul

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
)

// TestLineHoldsBackAnswers: a change answers the candidate given the turn
// alone; the others are answered when the turn ends, or the one the turn
// passes to when its holder waits again instead of acting.
func TestLineHoldsBackAnswers(t *testing.T) {
	var l lines
	const key = "service/k/leader"
	answered := map[string]int{} // per candidate: 1 answered, 2 released
	places := map[string]*place{}
	for _, id := range []string{"a", "b", "c", "d"} {
		kl, w := l.join(key, id)
		places[id] = &place{kl: kl, w: w}
	}
	free := election.Record{Revision: 7}
	for _, id := range []string{"b", "a", "c", "d"} { // the read answers in any order
		l.answer(places[id], free, func(released bool) {
			if answered[id] != 0 {
				t.Errorf("%s answered twice", id)
			}
			answered[id] = 1
			if released {
				answered[id] = 2
			}
		})
	}
	want := func(step string, w map[string]int) {
		t.Helper()
		for _, id := range []string{"a", "b", "c", "d"} {
			if answered[id] != w[id] {
				t.Errorf("%s: %s answered %d, want %d (0 no, 1 yes, 2 released)", step, id, answered[id], w[id])
			}
		}
	}
	want("at the change", map[string]int{"a": 1})
	// a waits again without acting: the turn passes to b, c and d stay
	// held back.
	l.leave(key, places["a"].kl, places["a"].w, false)
	want("after a passed", map[string]int{"a": 1, "b": 1})
	// b's acquisition returned: the others are released.
	l.taken(key, "b")
	l.wg.Wait() // answered on a goroutine of their own
	want("after b acquired", map[string]int{"a": 1, "b": 1, "c": 2, "d": 2})
	for _, id := range []string{"b", "c", "d"} {
		l.leave(key, places[id].kl, places[id].w, id == "b")
	}
	if len(l.keys) != 0 {
		t.Errorf("%d lines left after every call left", len(l.keys))
	}
}

// wakeBackend notes, at each acquisition, how many calls the shared reads
// of b had answered.
type wakeBackend struct {
	*Backend
	mu       sync.Mutex
	acquired []int64 // answered at the start of each Acquire since reset
}

func (wb *wakeBackend) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	s, err := wb.Backend.NewSession(ctx, p)
	if err != nil {
		return nil, err
	}
	return &wakeSession{session: s.(*session), wb: wb}, nil
}

func (wb *wakeBackend) reset() []int64 {
	wb.mu.Lock()
	defer wb.mu.Unlock()
	a := wb.acquired
	wb.acquired = nil
	return a
}

type wakeSession struct {
	*session
	wb *wakeBackend
}

func (s *wakeSession) Acquire(ctx context.Context) (election.Acquisition, error) {
	s.wb.mu.Lock()
	s.wb.acquired = append(s.wb.acquired, s.wb.watches.answered.Load())
	s.wb.mu.Unlock()
	return s.session.Acquire(ctx)
}

// TestFollowersSleepThroughTheNextLeadersAcquisition: at a graceful
// handover among the candidates of one process on one backend, the shared
// read that shows the key released wakes one candidate in line, the next
// leader, and none of the others until its acquisition: they are woken
// after it, and every follower's handler learns the new leader well within
// the turn's bound. With more keys watched than ListThreshold, through the
// shared recursive read, the same.
func TestFollowersSleepThroughTheNextLeadersAcquisition(t *testing.T) {
	for _, others := range []int{0, ListThreshold + 1} {
		t.Run(fmt.Sprintf("other-keys-%d", others), func(t *testing.T) {
			testFollowersSleep(t, others)
		})
	}
}

func testFollowersSleep(t *testing.T, others int) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	client, _ := countingClient(t, srv)
	b, err := NewBackend(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	wb := &wakeBackend{Backend: b}
	const n = 20
	ctx := context.Background()
	var (
		mu     sync.Mutex
		knows  = map[int]string{} // the leader each candidate's handler was told
		leader = make(chan int, n)
	)
	start := func(el *election.Elector, i int) {
		t.Helper()
		if err := el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
			mu.Lock()
			knows[i] = l.LeaderID
			mu.Unlock()
			if l.IsLeader {
				if i >= 0 {
					leader <- i
				}
				<-ctx.Done()
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = el.Close(cctx)
		})
	}
	for i := range others {
		el, err := election.New(b, election.Options{Resource: fmt.Sprint("other-", i), ID: "o", TTL: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		start(el, -1-i)
		el2, err := election.New(b, election.Options{Resource: fmt.Sprint("other-", i), ID: "p", TTL: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		start(el2, -1-i)
	}
	els := make([]*election.Elector, n)
	for i := range els {
		els[i], err = election.New(wb, election.Options{Resource: "wake", ID: fmt.Sprint("c", i), TTL: 10 * time.Second, RetryInterval: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		start(els[i], i)
	}
	next := func() int {
		t.Helper()
		select {
		case i := <-leader:
			return i
		case <-time.After(30 * time.Second):
			t.Fatal("no leader within 30 s")
			return -1
		}
	}
	drain := func() {
		for {
			select {
			case <-leader:
			default:
				return
			}
		}
	}
	cur := next()
	time.Sleep(time.Second) // every candidate follows
	drain()
	const handovers = 5
	for h := range handovers {
		wb.reset()
		before := b.watches.answered.Load()
		released := time.Now()
		if err := els[cur].Release(ctx); err != nil {
			t.Fatal(err)
		}
		cur = next()
		acq := wb.reset()
		if len(acq) == 0 {
			t.Fatalf("handover %d: the next leader's acquisition was not seen", h)
		}
		// The read's answer to the leader's own watch of its record, and
		// to the next leader.
		woken := acq[0] - before
		t.Logf("handover %d: %d calls woken before the next leader acquired", h, woken)
		if woken > 2 {
			t.Errorf("handover %d: the shared read woke %d calls before the next leader acquired, want at most 2 (the old leader's watch, the next in line) of %d candidates", h, woken, n)
		}
		id := fmt.Sprint("c", cur)
		learnt := func() bool {
			mu.Lock()
			defer mu.Unlock()
			for i := range n {
				if knows[i] != id {
					return false
				}
			}
			return true
		}
		for !learnt() && time.Since(released) < 5*time.Second {
			time.Sleep(time.Millisecond)
		}
		took := time.Since(released)
		t.Logf("handover %d: every follower learnt the new leader %v after the release", h, took)
		if took >= turnBound-100*time.Millisecond {
			t.Errorf("handover %d: the followers learnt the new leader %v after the release, want well within the turn's bound of %v", h, took, turnBound)
		}
		time.Sleep(300 * time.Millisecond)
		drain()
	}
}
