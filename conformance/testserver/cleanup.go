package testserver

import (
	"sync"
	"testing"
)

// serverCleanups holds the cleanups of every process a server started, and
// runs them, last first, when the test that started the server ends. So a
// process started by a Restart stops after what the test started between
// the server's start and the Restart (clients, electors), not before them:
// those still reach a running server when they close.
type serverCleanups struct {
	mu  sync.Mutex
	fns []func()
}

// runAtEnd runs the collected cleanups when t ends.
func (c *serverCleanups) runAtEnd(t testing.TB) {
	t.Cleanup(func() {
		c.mu.Lock()
		fns := c.fns
		c.fns = nil
		c.mu.Unlock()
		for i := len(fns) - 1; i >= 0; i-- {
			fns[i]()
		}
	})
}

// tb returns t with its Cleanup collected by c, for starting a process.
func (c *serverCleanups) tb(t testing.TB) testing.TB { return laterCleanup{TB: t, c: c} }

// laterCleanup is a testing.TB whose cleanups run with its server's.
type laterCleanup struct {
	testing.TB
	c *serverCleanups
}

func (l laterCleanup) Cleanup(f func()) {
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	l.c.fns = append(l.c.fns, f)
}
