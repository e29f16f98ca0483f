package main

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/election"
)

// TestMove runs the three steps on two memory stores: leadership must end
// on the new store, with the fenced counter never refusing a write.
func TestMove(t *testing.T) {
	defer goleak.VerifyNone(t)
	m := &mover{opener: &backends.Opener{}, opts: election.Options{Resource: "counter", TTL: time.Second}, step: 1200 * time.Millisecond}
	if err := m.run(context.Background(), "memory://old", "memory://new", 3); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	if m.total < 5 {
		t.Errorf("only %d increments during the move", m.total)
	}
	m.mu.Unlock()
	if id, term := m.opener.MemoryStore("new").Leader("counter"); id != "" {
		t.Errorf("leadership still held after close: %s term %d", id, term)
	}
}
