package testserver

import (
	"context"
	"testing"
	"time"
)

func TestConsulStartRestart(t *testing.T) {
	s := StartConsul(t, ConsulOptions{ACL: true})
	check := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.ready(ctx); err != nil {
			t.Fatalf("not ready: %v", err)
		}
	}
	check()
	first := s.Process().PID()
	s.Restart(t)
	if s.Process().PID() == first {
		t.Fatal("Restart did not start a new process")
	}
	check()
	s.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	err := s.ready(ctx)
	cancel()
	if err == nil {
		t.Fatal("killed agent still ready")
	}
	s.Restart(t)
	check()

	// The management token is required: without it the catalog is hidden.
	anon := &ConsulServer{Addr: s.Addr, NodeName: s.NodeName}
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := anon.ready(ctx); err == nil {
		t.Error("ACL agent answered an anonymous catalog read")
	}
}

// TestRestartedServersStopLast: what a test starts between a server's start
// and its Restart is cleaned up while the restarted server still runs, and
// every process the server started is stopped when the test ends.
func TestRestartedServersStopLast(t *testing.T) {
	var (
		started          bool
		runningAtCleanup bool
		procs            []*Process
	)
	t.Run("consul", func(t *testing.T) {
		s := StartConsul(t, ConsulOptions{})
		started = true
		t.Cleanup(func() { // as an elector's Close would be
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			runningAtCleanup = s.ready(ctx) == nil
		})
		procs = append(procs, s.Process())
		s.Restart(t)
		procs = append(procs, s.Process())
	})
	if !started { // no Consul binary: the subtest skipped, and said why
		t.SkipNow()
	}
	if !runningAtCleanup {
		t.Error("the restarted agent stopped before the test's own cleanups ran")
	}
	for i, p := range procs {
		select {
		case <-p.exited:
		default:
			t.Errorf("process %d still running after the test", i)
		}
	}
}
