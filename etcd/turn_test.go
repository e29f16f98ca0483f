package etcd

import (
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/turn/turntest"
)

// TestOnlyNextInLineWakes: at a graceful handover among the candidates of
// one process on one backend, the candidate whose key became the first
// acquires before any other candidate's watch returns.
func TestOnlyNextInLineWakes(t *testing.T) {
	srv := startEtcd(t)
	b := newBackend(t, newClient(t, srv.Endpoint()))
	turntest.Check(t, b, turntest.Params{
		Candidates: 40,
		Handovers:  6,
		Options:    election.Options{TTL: 10 * time.Second, RetryInterval: 100 * time.Millisecond},
		TurnBound:  turnBound,
	})
}
