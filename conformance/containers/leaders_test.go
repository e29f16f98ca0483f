package containers

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// leaders follows the terms of a set of candidates as their handlers see
// them, and fails the test when two candidates lead at once or a term is not
// higher than every term before it.
type leaders struct {
	t testing.TB

	mu       sync.Mutex
	leading  map[string]uint64 // candidate ID → term, while its term runs
	lastTerm uint64
	changed  chan struct{} // closed and replaced at every change
}

func newLeaders(t testing.TB) *leaders {
	return &leaders{t: t, leading: map[string]uint64{}, changed: make(chan struct{})}
}

// handler returns the handler of candidate id: a leader call lasts until its
// term ends.
func (l *leaders) handler(id string) election.Handler {
	return func(ctx context.Context, ld election.Leadership) error {
		if !ld.IsLeader {
			return nil
		}
		l.begin(id, ld.Term)
		<-ctx.Done()
		l.end(id)
		return nil
	}
}

func (l *leaders) begin(id string, term uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for other, ot := range l.leading {
		l.t.Errorf("%s leads with term %d while %s still leads with term %d", id, term, other, ot)
	}
	if term <= l.lastTerm {
		l.t.Errorf("%s leads with term %d, not above the previous term %d", id, term, l.lastTerm)
	}
	l.lastTerm = max(l.lastTerm, term)
	l.leading[id] = term
	l.t.Logf("%s: %s leads, term %d", time.Now().Format("15:04:05.000"), id, term)
	l.notify()
}

func (l *leaders) end(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("%s: %s steps down, term %d", time.Now().Format("15:04:05.000"), id, l.leading[id])
	delete(l.leading, id)
	l.notify()
}

func (l *leaders) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// current returns the candidate that leads, and its term; "" when none does.
func (l *leaders) current() (string, uint64, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, term := range l.leading {
		return id, term, l.changed
	}
	return "", 0, l.changed
}

// await returns the candidate that leads, waiting for one at most d.
func (l *leaders) await(d time.Duration) (string, uint64, error) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		id, term, changed := l.current()
		if id != "" {
			return id, term, nil
		}
		select {
		case <-changed:
		case <-timer.C:
			return "", 0, fmt.Errorf("no leader within %v", d)
		}
	}
}
