package consul

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
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
	ctx := context.Background()
	leaders := make(chan *election.Elector, n)
	els := make([]*election.Elector, n)
	for i := range els {
		el, err := election.New(b, election.Options{Resource: "herd", ID: fmt.Sprint("c", i), TTL: 10 * time.Second, RetryInterval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		els[i] = el
		if err := el.Start(ctx, election.LeaderOnly(func(ctx context.Context, term uint64) error {
			leaders <- el
			<-ctx.Done()
			return nil
		})); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = el.Close(ctx) })
	}
	next := func() *election.Elector {
		t.Helper()
		select {
		case el := <-leaders:
			return el
		case <-time.After(10 * time.Second):
			t.Fatal("no leader within 10 s")
			return nil
		}
	}
	leader := next()
	time.Sleep(time.Second) // every candidate follows
	const handovers = 5
	before := counter.txns.Load()
	for range handovers {
		if err := leader.Release(ctx); err != nil {
			t.Fatal(err)
		}
		leader = next()
		time.Sleep(200 * time.Millisecond)
	}
	per := float64(counter.txns.Load()-before) / handovers
	t.Logf("%d candidates: %.1f transactions per handover", n, per)
	if per > 5 {
		t.Errorf("%.1f transactions per handover among %d candidates of one process; want at most 5 (one lock in flight at a time)", per, n)
	}
}
