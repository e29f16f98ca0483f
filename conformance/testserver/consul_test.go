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
