//go:build go1.25

package election_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// TestTermsGrowAfterStoreLoss: a store that loses its data issues terms
// from the start again; an elector that saw a higher term raises the
// store's floor before it leads, so no handler is ever given a term lower
// than one announced before.
func TestTermsGrowAfterStoreLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		var mu sync.Mutex
		var leads []uint64 // the terms of every leader call, in order
		h := func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				mu.Lock()
				leads = append(leads, l.Term)
				mu.Unlock()
				<-ctx.Done()
			}
			return nil
		}
		opts := func(id string) election.Options {
			return election.Options{Resource: "r", ID: id, TTL: 10 * time.Second}
		}
		a := startElector(t, store, opts("a"), h)
		synctest.Wait()
		startElector(t, store, opts("b"), h)
		// A few handovers, so that the terms climb.
		for range 5 {
			time.Sleep(time.Second)
			synctest.Wait()
			_ = a.Release(context.Background())
			time.Sleep(time.Second)
			synctest.Wait()
		}
		_, before := store.Leader("r")
		store.Reset()
		time.Sleep(time.Minute)
		synctest.Wait()
		id, after := store.Leader("r")
		if id == "" {
			t.Fatal("no leader a minute after the store lost its data")
		}
		if after <= before {
			t.Errorf("term %d after the loss, %d before", after, before)
		}
		mu.Lock()
		defer mu.Unlock()
		for i := 1; i < len(leads); i++ {
			if leads[i] <= leads[i-1] {
				t.Errorf("leader calls had terms %v: not increasing", leads)
				break
			}
		}
	})
}

// noFloor hides a backend's TermFloorRaiser, as a backend without one.
type noFloor struct{ election.Backend }

// recorder keeps every notification of several electors, by ID.
type recorder struct {
	mu    sync.Mutex
	calls map[string][]election.Leadership
}

func (r *recorder) handler(id string) election.Handler {
	return func(ctx context.Context, l election.Leadership) error {
		r.mu.Lock()
		if r.calls == nil {
			r.calls = map[string][]election.Leadership{}
		}
		r.calls[id] = append(r.calls[id], l)
		r.mu.Unlock()
		if l.IsLeader {
			<-ctx.Done()
		}
		return nil
	}
}

// check reports a notification of id with a term below one given before.
func (r *recorder) check(t *testing.T, id string) (highest uint64) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, l := range r.calls[id] {
		if l.Term != 0 && l.Term < highest {
			t.Errorf("%s was told term %d (leader %q, IsLeader %v) after term %d; calls: %+v", id, l.Term, l.LeaderID, l.IsLeader, highest, r.calls[id][:i+1])
		}
		highest = max(highest, l.Term)
	}
	return highest
}

// TestNoLowerTermAfterStoreLoss: after the store lost its data, a
// candidate that never saw the old terms leads with a low term. Candidates
// that saw higher terms are not told it, nor given it when they acquire:
// with a backend that raises its term floor, the next term is above every
// term seen; with one that cannot, they do not lead with a lower term.
func TestNoLowerTermAfterStoreLoss(t *testing.T) {
	for _, raiser := range []bool{true, false} {
		t.Run(map[bool]string{true: "floor", false: "no-floor"}[raiser], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := memory.NewStore()
				rec := &recorder{}
				logs := &syncBuffer{}
				start := func(id string) *election.Elector {
					var b election.Backend = store.Connect(id)
					if !raiser {
						b = noFloor{b}
					}
					el, err := election.New(b, election.Options{Resource: "r", ID: id, TTL: 10 * time.Second, Logger: slog.New(slog.NewTextHandler(logs, nil))})
					if err != nil {
						t.Fatal(err)
					}
					if err := el.Start(context.Background(), rec.handler(id)); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = el.Close(context.Background()) })
					return el
				}
				a := start("a")
				synctest.Wait()
				b := start("b")
				synctest.Wait()
				// A few handovers, so that the terms climb.
				els := map[string]*election.Elector{"a": a, "b": b}
				for range 6 {
					id, _ := store.Leader("r")
					_ = els[id].Release(context.Background())
					time.Sleep(2 * time.Second)
					synctest.Wait()
				}
				_, before := store.Leader("r")
				if before < 6 {
					t.Fatalf("term %d before the loss; want it to have climbed", before)
				}
				store.Cut("a")
				store.Cut("b")
				store.Reset()
				c := start("c")
				synctest.Wait()
				id, low := store.Leader("r")
				if id != "c" || low >= before {
					t.Fatalf("after the loss %q leads with term %d; want c with a term below %d", id, low, before)
				}
				store.Heal("a")
				store.Heal("b")
				time.Sleep(time.Minute)
				synctest.Wait()
				highA, highB := rec.check(t, "a"), rec.check(t, "b")
				rec.mu.Lock()
				for _, id := range []string{"a", "b"} {
					calls := rec.calls[id]
					if last := calls[len(calls)-1]; last.LeaderID != "" || last.IsLeader || last.Term != 0 {
						t.Errorf("%s, following c's low term, was last told %+v; want no leader", id, last)
					}
				}
				rec.mu.Unlock()
				if highA < before-1 || highB < before-1 {
					t.Fatalf("a and b were told terms up to %d and %d; want them to have seen the terms before the loss (%d)", highA, highB, before)
				}
				if n := strings.Count(logs.String(), "leader with a term below one seen before"); n < 1 || n > 2 {
					t.Errorf("followers shown a lower term warned %d times; want once each (a and b):\n%s", n, logs)
				}
				// c gives the leadership up: a or b may acquire now.
				_ = c.Release(context.Background())
				time.Sleep(time.Minute)
				synctest.Wait()
				rec.check(t, "a")
				rec.check(t, "b")
				id, after := store.Leader("r")
				if raiser && (id == "" || after <= before) {
					t.Errorf("after c released, %q leads with term %d; want a term above %d", id, after, before)
				}
				if !raiser && (id == "a" || id == "b") && after <= before {
					t.Errorf("%s holds term %d, not above %d, without a floor to raise", id, after, before)
				}
			})
		})
	}
}
