package consul_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// TestSharedSessionLeaderGoroutines checks that 200 electors leading on
// one shared session hold one goroutine each, their handler's leader call,
// and no more: their watches of their records are functions of the
// backend's one recursive read (consul.Backend.WatchRecord), not a
// goroutine each waiting in Watch. (Not parallel: it counts the process's
// goroutines.)
func TestSharedSessionLeaderGoroutines(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	p := newProcess(t, srv, "a", &conformance.TermLog{}, consul.Options{}, sharedOpts)
	before := runtime.NumGoroutine()
	const n = 200
	els := make([]*election.Elector, n)
	for i := range els {
		els[i] = p.elect(t, fmt.Sprintf("goroutines-%03d", i))
	}
	waitAll(t, 60*time.Second, "electors leading", els, isLeader)
	// The session's renewals, the recursive read, and a few connections
	// with two goroutines each.
	const others = 20
	var g int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		p.rt.base.CloseIdleConnections()
		g = runtime.NumGoroutine() - before
		if g <= n+others || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("%d leaders on a shared session: %d goroutines more, %.2f each", n, g, float64(g)/n)
	if g > n+others {
		t.Errorf("%d leaders on a shared session hold %d goroutines, %.2f each; want one each (the handler's), and at most %d besides",
			n, g, float64(g)/n, others)
	}
}
