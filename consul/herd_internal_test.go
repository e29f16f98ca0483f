package consul

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/internal/turn/turntest"
)

// txnCounter counts the transactions (the lock requests) of a client.
type txnCounter struct {
	next http.RoundTripper
	txns atomic.Int64
}

func (c *txnCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Path == "/v1/txn" {
		c.txns.Add(1)
	}
	return c.next.RoundTrip(r)
}

// TestCandidatesTakeTurnsAtTheLock: the candidates of one process for one
// key send one lock at a time, and share its outcome, so that a release
// costs a few transactions, not one per candidate.
func TestCandidatesTakeTurnsAtTheLock(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	counter := &txnCounter{next: tr}
	client, err := api.NewClient(&api.Config{Address: srv.Addr, HttpClient: &http.Client{Transport: counter}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBackend(client, Options{LockDelay: NoLockDelay})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	const n = 40
	handOver := turntest.Herd(t, b, n)
	const handovers = 5
	before := counter.txns.Load()
	for range handovers {
		handOver()
	}
	per := float64(counter.txns.Load()-before) / handovers
	t.Logf("%d candidates: %.1f transactions per handover", n, per)
	if per > 5 {
		t.Errorf("%.1f transactions per handover among %d candidates of one process; want at most 5 (one lock in flight at a time)", per, n)
	}
}
