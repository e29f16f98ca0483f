package conformance

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// recorder sees every handler call of the candidates of one test, stamped
// with the monotonic clock, and checks the safety invariants as each call
// happens: at most one leader of a resource at any moment (from a leader
// call's start until its context ended), and terms that only grow.
type recorder struct {
	t testing.TB

	mu       sync.Mutex
	changed  chan struct{}
	active   map[string]*leaderCall // resource -> current leader call
	maxTerm  map[string]uint64      // resource -> highest term started
	calls    []call
	lastSeen map[string]election.Leadership  // candidate -> last notification
	lastOn   map[seenKey]election.Leadership // candidate and resource -> last notification
	tolerate map[string]bool                 // resources whose leadership was taken from outside
	overlaps int
}

// call is one handler call, or the end of a leader call's context.
type call struct {
	at     time.Time
	id     string
	l      election.Leadership
	ctxEnd bool
	cause  error // the cause of the context's end, for a ctxEnd
}

// seenKey names the electors of one candidate, one per resource, as on a
// shared session.
type seenKey struct{ id, resource string }

type leaderCall struct {
	id    string
	term  uint64
	start time.Time
}

func newRecorder(t testing.TB) *recorder {
	return &recorder{
		t:        t,
		changed:  make(chan struct{}),
		active:   map[string]*leaderCall{},
		maxTerm:  map[string]uint64{},
		lastSeen: map[string]election.Leadership{},
		lastOn:   map[seenKey]election.Leadership{},
		tolerate: map[string]bool{},
	}
}

// leaderStarted records a leader call and checks it against the others.
func (r *recorder) leaderStarted(id string, l election.Leadership) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.signal()
	r.calls = append(r.calls, call{at: now, id: id, l: l})
	r.lastSeen[id] = l
	r.lastOn[seenKey{id, l.Resource}] = l
	if cur := r.active[l.Resource]; cur != nil && r.tolerate[l.Resource] {
		r.overlaps++
		r.t.Logf("leadership of %q was removed from outside: %s (term %d) started while %s (term %d) had not yet learned it",
			l.Resource, id, l.Term, cur.id, cur.term)
	} else if cur != nil {
		r.t.Errorf("two leaders of %q: %s (term %d) started at %v while %s (term %d, since %v) had not yet stepped down",
			l.Resource, id, l.Term, now.Format("15:04:05.000000"), cur.id, cur.term, cur.start.Format("15:04:05.000000"))
	}
	if l.Term <= r.maxTerm[l.Resource] {
		r.t.Errorf("term did not grow: %s leads %q with term %d after term %d", id, l.Resource, l.Term, r.maxTerm[l.Resource])
	}
	if l.Term > r.maxTerm[l.Resource] {
		r.maxTerm[l.Resource] = l.Term
	}
	if l.LeaderID != id {
		r.t.Errorf("leader call of %s reports LeaderID %q", id, l.LeaderID)
	}
	r.active[l.Resource] = &leaderCall{id: id, term: l.Term, start: now}
}

// leaderEnded records that a leader call's context ended, for cause.
func (r *recorder) leaderEnded(id string, l election.Leadership, cause error) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.signal()
	r.calls = append(r.calls, call{at: now, id: id, l: l, ctxEnd: true, cause: cause})
	if cur := r.active[l.Resource]; cur != nil && cur.id == id && cur.term == l.Term {
		delete(r.active, l.Resource)
	}
}

// takenFromOutside stops counting overlapping leaders of resource as
// failures: removing a leader's session or record from outside the electors
// frees the leadership in the store before the old leader can learn it.
func (r *recorder) takenFromOutside(resource string) {
	r.mu.Lock()
	r.tolerate[resource] = true
	r.mu.Unlock()
}

func (r *recorder) observed(id string, l election.Leadership) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer r.signal()
	r.calls = append(r.calls, call{at: time.Now(), id: id, l: l})
	r.lastSeen[id] = l
	r.lastOn[seenKey{id, l.Resource}] = l
}

func (r *recorder) signal() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// leader returns the candidate whose leader call of resource is running.
func (r *recorder) leader(resource string) (id string, term uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur := r.active[resource]; cur != nil {
		return cur.id, cur.term, true
	}
	return "", 0, false
}

// seen returns the last notification candidate id saw.
func (r *recorder) seen(id string) election.Leadership {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastSeen[id]
}

// seenOn returns the last notification the elector of candidate id for
// resource saw.
func (r *recorder) seenOn(id, resource string) election.Leadership {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastOn[seenKey{id, resource}]
}

// mark returns the position of the next call to be recorded.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// firstStart returns the first leader call of resource recorded at or after
// position from, of any candidate but except, and its position.
func (r *recorder) firstStart(resource, except string, from int) (call, int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := from; i < len(r.calls); i++ {
		c := r.calls[i]
		if !c.ctxEnd && c.l.IsLeader && c.l.Resource == resource && c.id != except {
			return c, i, true
		}
	}
	return call{}, 0, false
}

// firstStartBy returns the first leader call of resource by candidate id
// recorded at or after position from, and its position.
func (r *recorder) firstStartBy(resource, id string, from int) (call, int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := from; i < len(r.calls); i++ {
		c := r.calls[i]
		if !c.ctxEnd && c.l.IsLeader && c.l.Resource == resource && c.id == id {
			return c, i, true
		}
	}
	return call{}, 0, false
}

// ctxEnd returns when the leader call of id in term ended, and the position
// of that record.
func (r *recorder) ctxEnd(id string, term uint64) (time.Time, int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, c := range r.calls {
		if c.ctxEnd && c.id == id && c.l.Term == term {
			return c.at, i, true
		}
	}
	return time.Time{}, 0, false
}

// ctxEndOn returns the end of the leader call of id for resource in term.
func (r *recorder) ctxEndOn(id, resource string, term uint64) (call, int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, c := range r.calls {
		if c.ctxEnd && c.id == id && c.l.Resource == resource && c.l.Term == term {
			return c, i, true
		}
	}
	return call{}, 0, false
}

// waitFor waits until cond holds, checking it on every recorded call, for at
// most d. It reports whether cond held.
func (r *recorder) waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ch := r.changed
		r.mu.Unlock()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return cond()
		}
	}
}

// dump describes every recorded call, for failure messages.
func (r *recorder) dump() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := ""
	for _, c := range r.calls {
		what := fmt.Sprintf("follower: leader=%q term=%d", c.l.LeaderID, c.l.Term)
		switch {
		case c.ctxEnd:
			what = fmt.Sprintf("leader ctx ended: term=%d", c.l.Term)
		case c.l.IsLeader:
			what = fmt.Sprintf("LEADER: term=%d", c.l.Term)
		case c.l.Err != nil:
			what = fmt.Sprintf("error: %v", c.l.Err)
		}
		out += fmt.Sprintf("  %s %-10s %s %s\n", c.at.Format("15:04:05.000000"), c.id, c.l.Resource, what)
	}
	return out
}

// handler returns the handler of candidate id. A leader call blocks until
// its context ends, records the end, and returns the result of fail if set.
func (r *recorder) handler(id string, fail func(l election.Leadership) error) election.Handler {
	return func(ctx context.Context, l election.Leadership) error {
		if !l.IsLeader {
			r.observed(id, l)
			return nil
		}
		r.leaderStarted(id, l)
		// Recorded also when fail panics or returns an error, as the
		// call returns: the engine ends such a term then.
		defer func() { r.leaderEnded(id, l, context.Cause(ctx)) }()
		if fail != nil {
			if err := fail(l); err != nil {
				return err
			}
		}
		<-ctx.Done()
		return nil
	}
}
