package redis_test

import (
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/turn/turntest"
	"github.com/consul-leader/consul-leader/redis"
)

// TestOneCandidateWakesAtARelease: at a graceful handover among the
// candidates of one process on one backend, the release notice wakes one
// of them, which acquires before any other candidate's watch returns.
func TestOneCandidateWakesAtARelease(t *testing.T) {
	srv := startRedis(t, srvOpts())
	b, err := redis.NewBackend(client(t, srv.Addr()), redis.BackendOptions{})
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

// TestTurnPassesOverCandidatesHoldingOff: the candidates that led before
// hold off for a minute after their release, and wait longest by then; a
// release notice that wakes one of them has it pass the turn on to a
// candidate that acquires, rather than waking every candidate.
func TestTurnPassesOverCandidatesHoldingOff(t *testing.T) {
	srv := startRedis(t, srvOpts())
	b, err := redis.NewBackend(client(t, srv.Addr()), redis.BackendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	turntest.Check(t, b, turntest.Params{
		Candidates: 40,
		Handovers:  6,
		Options:    election.Options{TTL: 10 * time.Second, RetryInterval: time.Minute},
		TurnBound:  500 * time.Millisecond, // the backend's bound on a turn
	})
}
