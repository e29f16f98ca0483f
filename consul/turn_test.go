package consul_test

import (
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/turn/turntest"
)

// TestOnlyNextInLineWakes: at a graceful handover among the candidates of
// one process on one backend, the candidate that has waited longest
// acquires before any other candidate's watch returns.
func TestOnlyNextInLineWakes(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	b, err := consul.NewBackend(newClient(t, srv.Addr, ""), consul.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	turntest.Check(t, b, turntest.Params{
		Candidates: 40,
		Handovers:  6,
		Options:    election.Options{TTL: 10 * time.Second, RetryInterval: 100 * time.Millisecond},
		TurnBound:  500 * time.Millisecond, // the backend's bound on a turn
	})
}
