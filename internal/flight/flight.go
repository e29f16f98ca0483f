// Package flight lets the candidates of one process for one resource take
// turns at the store: while one candidate's acquisition of a key is in
// flight, the others wait for its outcome instead of sending their own, so
// that a release wakes one request per process, not one per candidate.
package flight

import (
	"context"
	"sync"
)

// Group runs at most one call per key at a time. Its zero value is ready to
// use.
type Group[V any] struct {
	mu    sync.Mutex
	calls map[string]*call[V]
}

type call[V any] struct {
	done chan struct{}
	v    V
	err  error
}

// Do runs fn for key and returns its outcome, unless a call for key is in
// flight: it then waits for that call and returns its outcome with shared
// set, or ctx's error if ctx ends first. A call in flight that failed is
// not shared: the caller then runs fn itself, so that one caller's
// cancelled context never fails another.
func (g *Group[V]) Do(ctx context.Context, key string, fn func() (V, error)) (v V, shared bool, err error) {
	g.mu.Lock()
	if c, ok := g.calls[key]; ok {
		g.mu.Unlock()
		select {
		case <-c.done:
		case <-ctx.Done():
			var zero V
			return zero, false, ctx.Err()
		}
		if c.err == nil {
			return c.v, true, nil
		}
		v, err = fn()
		return v, false, err
	}
	c := &call[V]{done: make(chan struct{})}
	if g.calls == nil {
		g.calls = make(map[string]*call[V])
	}
	g.calls[key] = c
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.calls, key)
		if len(g.calls) == 0 {
			// A map keeps the room of its most keys at once: many
			// acquisitions at a time (a process starting to lead many
			// resources) would leave it large for good.
			g.calls = nil
		}
		g.mu.Unlock()
		close(c.done)
	}()
	c.v, c.err = fn()
	return c.v, false, c.err
}
