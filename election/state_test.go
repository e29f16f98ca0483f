//go:build go1.25

package election_test

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// stateRecorder is a handler that keeps every Leadership it is given, and
// blocks leader calls until their context ends.
type stateRecorder struct {
	mu    sync.Mutex
	calls []election.Leadership
	el    **election.Elector
	// During each call: what IsLeader and State reported.
	isLeader []bool
	state    []election.Leadership
}

func (r *stateRecorder) handle(ctx context.Context, l election.Leadership) error {
	r.mu.Lock()
	r.calls = append(r.calls, l)
	r.isLeader = append(r.isLeader, (*r.el).IsLeader())
	r.state = append(r.state, (*r.el).State())
	r.mu.Unlock()
	if l.IsLeader {
		<-ctx.Done()
	}
	return nil
}

func (r *stateRecorder) last() election.Leadership {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.calls) == 0 {
		return election.Leadership{}
	}
	return r.calls[len(r.calls)-1]
}

func startRecorded(t *testing.T, store *memory.Store, opts election.Options) (*election.Elector, *stateRecorder) {
	t.Helper()
	r := &stateRecorder{}
	el, err := memory.New(store, opts)
	if err != nil {
		t.Fatal(err)
	}
	r.el = &el
	if el.IsLeader() || !reflect.DeepEqual(el.State(), election.Leadership{}) {
		t.Errorf("before Start: IsLeader %v, State %+v; want false, zero", el.IsLeader(), el.State())
	}
	if err := el.Start(context.Background(), r.handle); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = el.Close(context.Background()) })
	return el, r
}

func sameLeadership(a, b election.Leadership) bool {
	return a.Resource == b.Resource && a.LeaderID == b.LeaderID && string(a.Value) == string(b.Value) &&
		a.IsLeader == b.IsLeader && a.Term == b.Term && reflect.DeepEqual(a.Session, b.Session) &&
		errors.Is(a.Err, b.Err) && errors.Is(b.Err, a.Err)
}

// TestIsLeaderAndState: IsLeader is true from the leader call on, false the
// moment the term ends (release, loss, Close); State is what the handler
// was told, during its call and after.
func TestIsLeaderAndState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		a, ra := startRecorded(t, store, election.Options{Resource: "r", ID: "a", Value: []byte("va")})
		synctest.Wait()
		if !a.IsLeader() {
			t.Fatal("a does not lead")
		}
		b, rb := startRecorded(t, store, election.Options{Resource: "r", ID: "b"})
		synctest.Wait()
		if b.IsLeader() {
			t.Error("follower b: IsLeader true")
		}
		for name, c := range map[string]struct {
			el *election.Elector
			r  *stateRecorder
		}{"a": {a, ra}, "b": {b, rb}} {
			if got, want := c.el.State(), c.r.last(); !sameLeadership(got, want) {
				t.Errorf("%s: State = %+v, handler was told %+v", name, got, want)
			}
		}
		if s := b.State(); s.LeaderID != "a" || string(s.Value) != "va" || s.IsLeader {
			t.Errorf("follower b: State = %+v, want a leading", s)
		}

		// Release: false as soon as Release returned, before the handler
		// is told. By then a may already have seen b take over.
		if err := a.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s := a.State(); a.IsLeader() || s.IsLeader || s.LeaderID != "" && s.LeaderID != "b" {
			t.Errorf("after Release: IsLeader %v, State %+v", a.IsLeader(), a.State())
		}
		synctest.Wait()
		if !b.IsLeader() || b.State().LeaderID != "b" || !b.State().IsLeader {
			t.Errorf("b after a released: IsLeader %v, State %+v", b.IsLeader(), b.State())
		}

		// Loss: the store takes the leadership away. b, free to campaign
		// at once, may lead again, with a new term.
		lost := b.State().Term
		if !store.Expire("r") {
			t.Fatal("nothing to expire")
		}
		synctest.Wait()
		if b.IsLeader() && b.State().Term == lost {
			t.Errorf("b: IsLeader true after losing term %d", lost)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		for name, c := range map[string]struct {
			el *election.Elector
			r  *stateRecorder
		}{"a": {a, ra}, "b": {b, rb}} {
			if got, want := c.el.State(), c.r.last(); !sameLeadership(got, want) {
				t.Errorf("%s: State = %+v, handler was last told %+v", name, got, want)
			}
			c.r.mu.Lock()
			for i, l := range c.r.calls {
				if c.r.isLeader[i] != l.IsLeader || !sameLeadership(c.r.state[i], l) {
					t.Errorf("%s: call %d told %+v; during it IsLeader %v, State %+v", name, i, l, c.r.isLeader[i], c.r.state[i])
				}
			}
			c.r.mu.Unlock()
		}

		// Close ends the term.
		leader := a
		if b.IsLeader() {
			leader = b
		}
		if !leader.IsLeader() {
			t.Fatal("no leader a minute after the loss")
		}
		if err := leader.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if leader.IsLeader() {
			t.Error("IsLeader true after Close")
		}
	})
}

// TestIsLeaderAtStepDownDeadline: a leader cut off from its store is no
// longer leader exactly at its step-down deadline: IsLeader is true a
// nanosecond before, false at the deadline.
func TestIsLeaderAtStepDownDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		ttl := 15 * time.Second
		el, _ := startRecorded(t, store, election.FixedRenewals(election.Options{Resource: "r", ID: "a", TTL: ttl}))
		synctest.Wait()
		start := time.Now()
		// Renewals happen every TTL/3 = 5 s; cut just after the one at 10 s.
		time.Sleep(10*time.Second + time.Millisecond)
		store.Cut("a")
		deadline := start.Add(10*time.Second + ttl - election.StepDownMargin(ttl))
		time.Sleep(time.Until(deadline) - time.Nanosecond)
		if !el.IsLeader() {
			t.Fatal("IsLeader false before the step-down deadline")
		}
		time.Sleep(time.Nanosecond)
		if el.IsLeader() {
			t.Error("IsLeader true at the step-down deadline")
		}
		if s := el.State(); s.IsLeader {
			t.Errorf("State at the step-down deadline = %+v", s)
		}
		store.Heal("a")
	})
}

// TestLeaderOnly: the function sees leader calls only, with their term.
func TestLeaderOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		var mu sync.Mutex
		seen := map[string][]uint64{}
		only := func(id string) election.Handler {
			return election.LeaderOnly(func(ctx context.Context, term uint64) error {
				mu.Lock()
				seen[id] = append(seen[id], term)
				mu.Unlock()
				<-ctx.Done()
				return nil
			})
		}
		a := startElector(t, store, election.Options{Resource: "r", ID: "a"}, only("a"))
		synctest.Wait()
		startElector(t, store, election.Options{Resource: "r", ID: "b"}, only("b"))
		synctest.Wait()
		if err := a.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		_, term := store.Leader("r")
		mu.Lock()
		defer mu.Unlock()
		if len(seen["a"]) != 1 || len(seen["b"]) != 1 || seen["b"][0] != term || seen["a"][0] >= term {
			t.Errorf("calls = %v, want one leader call each, b's with term %d", seen, term)
		}
	})
	h := election.LeaderOnly(func(context.Context, uint64) error { return errors.New("called") })
	if err := h(context.Background(), election.Leadership{LeaderID: "x", Term: 3}); err != nil {
		t.Errorf("follower notification reached the function: %v", err)
	}
	if err := h(context.Background(), election.Leadership{IsLeader: true, Term: 3}); err == nil {
		t.Error("leader call did not reach the function")
	}
}
