package etcd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
)

const (
	keepAliveOpen = "/etcdserverpb.Lease/LeaseKeepAlive open"
	keepAliveSend = "/etcdserverpb.Lease/LeaseKeepAlive send"
)

// TestRenewalsShareOneStream renews many sessions of one backend, at once
// and in turn, and checks that every renewal is one message on one
// LeaseKeepAlive stream; that a lease revoked by another client fails its
// next renewal with ErrSessionLost and no other; and that the backend's
// Close ends the stream, the next renewal opening another.
func TestRenewalsShareOneStream(t *testing.T) {
	srv := startEtcd(t)
	counter := newRPCCounter()
	client := newClient(t, srv.Endpoint(), counter.install)
	b := newBackend(t, client)
	ctx := testCtx(t, 60*time.Second)

	const n, rounds = 20, 3
	sessions := make([]election.Session, n)
	for i := range sessions {
		s, err := b.NewSession(ctx, election.SessionParams{Resource: fmt.Sprintf("ka-%d", i), ID: "c", TTL: MinTTL})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close(ctx) })
		sessions[i] = s
	}
	before := counter.snapshot()
	for range rounds {
		var wg sync.WaitGroup
		for _, s := range sessions {
			wg.Go(func() {
				if err := s.Renew(ctx); err != nil {
					t.Errorf("renew %s: %v", s.Info().ID, err)
				}
			})
		}
		wg.Wait()
	}
	got := counter.since(before)
	if got[keepAliveOpen] != 1 || got[keepAliveSend] != n*rounds {
		t.Fatalf("%d renewals: %d streams opened, %d keepalives sent (want 1 and %d); all requests: %v",
			n*rounds, got[keepAliveOpen], got[keepAliveSend], n*rounds, got)
	}

	revoked := sessions[0].(*session).l.id
	if _, err := newClient(t, srv.Endpoint()).Revoke(ctx, revoked); err != nil {
		t.Fatal(err)
	}
	if err := sessions[0].Renew(ctx); !errors.Is(err, election.ErrSessionLost) {
		t.Fatalf("renew of a revoked lease: %v, want ErrSessionLost", err)
	}
	if err := sessions[1].Renew(ctx); err != nil {
		t.Fatalf("renew of a live lease after another was revoked: %v", err)
	}
	if got := counter.since(before); got[keepAliveOpen] != 1 {
		t.Fatalf("a lost lease broke the stream: %d streams opened", got[keepAliveOpen])
	}

	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sessions[1].Renew(ctx); err != nil {
		t.Fatalf("renew after the backend's Close: %v", err)
	}
	if got := counter.since(before); got[keepAliveOpen] != 2 {
		t.Fatalf("after Close, the next renewal should open a stream: %d streams opened", got[keepAliveOpen])
	}
}

// TestKeepAliveStreamBreaks checks that a lost connection fails the renewal
// waiting on the stream at once, not at its deadline; that a renewal left
// unanswered past its deadline fails; and that after either the next
// renewal opens a stream and renews.
func TestKeepAliveStreamBreaks(t *testing.T) {
	srv := startEtcd(t)
	p := testserver.NewProxy(t, srv.Endpoint())
	counter := newRPCCounter()
	b := newBackend(t, newClient(t, p.Addr(), counter.install))
	ctx := testCtx(t, 60*time.Second)
	s, err := b.NewSession(ctx, election.SessionParams{Resource: "ka-break", ID: "c", TTL: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(ctx) })
	renewOK := func(step string) {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := s.Renew(rctx); err != nil {
			t.Fatalf("%s: renew: %v", step, err)
		}
	}
	renewOK("first")

	// The connection closes while a renewal waits: it fails then.
	p.Cut()
	failed := make(chan error, 1)
	go func() {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		failed <- s.Renew(rctx)
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	p.Reset()
	err = <-failed
	if err == nil || errors.Is(err, election.ErrSessionLost) || time.Since(start) > 10*time.Second {
		t.Fatalf("renewal on a connection closed under it: %v after %v, want an error other than ErrSessionLost at once", err, time.Since(start))
	}
	p.Heal()
	renewOK("after the connection closed")

	// A renewal unanswered past its deadline fails, and its stream with it.
	p.Cut()
	rctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = s.Renew(rctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("renewal past its deadline: %v, want context.DeadlineExceeded", err)
	}
	p.Heal()
	renewOK("after a stuck stream")
	if got := counter.snapshot()[keepAliveOpen]; got != 3 {
		t.Fatalf("%d streams opened, want 3: one at first, one after each break", got)
	}
}
