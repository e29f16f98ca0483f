package election_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// TestSharedStartContextEndsTerm: the end of the context given to Start
// stops an elector on a shared session, as Close does: its term ends, with
// that context's cause, and the store is released, so that a candidate on
// another session leads, while the session lives on for its other electors.
func TestSharedStartContextEndsTerm(t *testing.T) {
	store := memory.NewStore()
	s := newShared(t, store, "p", election.SessionOptions{TTL: 15 * time.Second})
	el, err := election.New(s.Backend(), election.Options{Resource: "r", ID: "p", Session: s})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = el.Close(context.Background()) })
	stopped := errors.New("the service is stopping")
	ctx, cancel := context.WithCancelCause(context.Background())
	ended := make(chan error, 1)
	if err := el.Start(ctx, election.LeaderOnly(func(tctx context.Context, _ uint64) error {
		<-tctx.Done()
		ended <- context.Cause(tctx)
		return nil
	})); err != nil {
		t.Fatalf("Start: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); !el.IsLeader(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the elector did not lead within 10s")
		}
	}
	cancel(stopped)
	select {
	case cause := <-ended:
		if !errors.Is(cause, stopped) {
			t.Errorf("the term ended with cause %v, want the Start context's %v", cause, stopped)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the term did not end within 10s of the end of the Start context")
	}
	other, err := memory.New(store, election.Options{Resource: "r", ID: "q", TTL: 15 * time.Second})
	if err != nil {
		t.Fatalf("memory.New: %v", err)
	}
	t.Cleanup(func() { _ = other.Close(context.Background()) })
	led := make(chan struct{})
	if err := other.Start(context.Background(), election.LeaderOnly(func(ctx context.Context, _ uint64) error {
		close(led)
		return nil
	})); err != nil {
		t.Fatalf("Start of the other: %v", err)
	}
	select {
	case <-led:
	case <-time.After(10 * time.Second):
		t.Fatal("the resource was not released: no other candidate led within 10s")
	}
}
