package conformance

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// TermLog records every handler call of several electors, with the time
// it was made, for tests of what handlers were told across a store's
// faults. It is safe for concurrent use; the zero value is ready.
type TermLog struct {
	mu    sync.Mutex
	calls []TermCall
}

// TermCall is one handler call recorded by a TermLog, or the end of a
// leader call's context.
type TermCall struct {
	ID    string              // the elector's name, as given to Handler
	L     election.Leadership // what the handler was given
	At    time.Time           // when the call was made, or the context ended
	Ended bool                // the end of a leader call's context, not a call
}

// Handler returns the handler of elector id.
func (r *TermLog) Handler(id string) election.Handler {
	return func(ctx context.Context, l election.Leadership) error {
		r.add(TermCall{ID: id, L: l, At: time.Now()})
		if l.IsLeader {
			<-ctx.Done()
			r.add(TermCall{ID: id, L: l, At: time.Now(), Ended: true})
		}
		return nil
	}
}

func (r *TermLog) add(c TermCall) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

// WaitLeader returns the first leader call made at or after since, within
// d of since.
func (r *TermLog) WaitLeader(since time.Time, d time.Duration) (TermCall, bool) {
	return r.WaitFor(since, d, func(c TermCall) bool { return c.L.IsLeader && !c.Ended })
}

// WaitFor returns the first call made at or after since that satisfies ok,
// within d of since.
func (r *TermLog) WaitFor(since time.Time, d time.Duration, ok func(TermCall) bool) (TermCall, bool) {
	for deadline := since.Add(d); ; time.Sleep(time.Millisecond) {
		r.mu.Lock()
		for _, c := range r.calls {
			if !c.At.Before(since) && ok(c) {
				r.mu.Unlock()
				return c, true
			}
		}
		r.mu.Unlock()
		if time.Now().After(deadline) {
			return TermCall{}, false
		}
	}
}

// Highest returns the highest term any handler was given so far.
func (r *TermLog) Highest() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var h uint64
	for _, c := range r.calls {
		h = max(h, c.L.Term)
	}
	return h
}

// LeaderCallsSince counts the leader calls made at or after since.
func (r *TermLog) LeaderCallsSince(since time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		if c.L.IsLeader && !c.Ended && !c.At.Before(since) {
			n++
		}
	}
	return n
}

// Since describes the calls made at or after since.
func (r *TermLog) Since(since time.Time) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := ""
	for _, c := range r.calls {
		if !c.At.Before(since) {
			s += fmt.Sprintf("  %s %s leader=%t ended=%t leaderID=%q term=%d err=%v\n",
				c.At.Format("15:04:05.000"), c.ID, c.L.IsLeader, c.Ended, c.L.LeaderID, c.L.Term, c.L.Err)
		}
	}
	return s
}

// CheckMonotonic fails t if a handler was given a term lower than one it
// was given before.
func (r *TermLog) CheckMonotonic(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	last := map[string]TermCall{}
	for _, c := range r.calls {
		if c.L.Term == 0 {
			continue // no leader, or an error
		}
		if p, ok := last[c.ID]; ok && c.L.Term < p.L.Term {
			t.Errorf("%s was given term %d (leader %q) at %s after term %d (leader %q) at %s",
				c.ID, c.L.Term, c.L.LeaderID, c.At.Format("15:04:05.000"), p.L.Term, p.L.LeaderID, p.At.Format("15:04:05.000"))
		}
		last[c.ID] = c
	}
}

// WaitTold waits up to d until the last call of every elector in ids was
// given term, and reports whether they were.
func (r *TermLog) WaitTold(ids []string, term uint64, d time.Duration) bool {
	for deadline := time.Now().Add(d); ; time.Sleep(time.Millisecond) {
		r.mu.Lock()
		last := map[string]uint64{}
		for _, c := range r.calls {
			if !c.Ended {
				last[c.ID] = c.L.Term
			}
		}
		r.mu.Unlock()
		told := true
		for _, id := range ids {
			told = told && last[id] == term
		}
		if told {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// CheckSettles runs lose, which makes the store lose its data (a restart
// without persistence, a flush), and checks what the electors of r do
// after it: a leader within one ttl of the store's return (lose returns
// then), with a term above every term told before the loss, and no other
// leader call in the two TTLs after it. It returns that leader's call; what
// names the loss in messages.
func (r *TermLog) CheckSettles(t testing.TB, what string, ttl time.Duration, lose func()) TermCall {
	t.Helper()
	before := r.Highest()
	lost := time.Now()
	lose()
	back := time.Now()
	l, ok := r.WaitLeader(lost, back.Sub(lost)+ttl)
	if !ok {
		t.Fatalf("%s: no new leader within one TTL (%v) of the store's return; calls:\n%s", what, ttl, r.Since(lost))
	}
	t.Logf("%s: store back after %v; %s leads %v later with term %d (highest before: %d)",
		what, back.Sub(lost).Round(time.Millisecond), l.ID, max(l.At.Sub(back), 0).Round(time.Millisecond), l.L.Term, before)
	if l.L.Term <= before {
		t.Errorf("%s: the first leader after the loss got term %d, not above the %d announced before", what, l.L.Term, before)
	}
	time.Sleep(2 * ttl)
	if n := r.LeaderCallsSince(l.At); n != 1 {
		t.Errorf("%s: %d leader calls in the 2 TTLs after the first election, want 1 (no handover):\n%s", what, n, r.Since(l.At))
	}
	return l
}

// Calls returns a copy of every call recorded so far, in order.
func (r *TermLog) Calls() []TermCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]TermCall(nil), r.calls...)
}

// CheckNoOverlap fails t if two electors' terms of one resource overlapped:
// a leader call made before the context of another elector's leader call
// of that resource ended. A term whose context has not ended yet lasts
// until now.
func (r *TermLog) CheckNoOverlap(t testing.TB) {
	t.Helper()
	type term struct {
		id         string
		n          uint64
		start, end time.Time
	}
	type termKey struct {
		id, resource string
		n            uint64
	}
	now := time.Now()
	byResource := map[string][]*term{}
	open := map[termKey]*term{}
	for _, c := range r.Calls() {
		if !c.L.IsLeader {
			continue
		}
		k := termKey{c.ID, c.L.Resource, c.L.Term}
		if c.Ended {
			if tm := open[k]; tm != nil {
				tm.end = c.At
				delete(open, k)
			}
			continue
		}
		tm := &term{id: c.ID, n: c.L.Term, start: c.At, end: now}
		open[k] = tm
		byResource[c.L.Resource] = append(byResource[c.L.Resource], tm)
	}
	for resource, terms := range byResource {
		for i, a := range terms {
			for _, b := range terms[i+1:] {
				if a.id != b.id && a.start.Before(b.end) && b.start.Before(a.end) {
					t.Errorf("terms of %q overlapped: %s's term %d from %s to %s, %s's term %d from %s to %s", resource,
						a.id, a.n, a.start.Format("15:04:05.000000"), a.end.Format("15:04:05.000000"),
						b.id, b.n, b.start.Format("15:04:05.000000"), b.end.Format("15:04:05.000000"))
				}
			}
		}
	}
}
