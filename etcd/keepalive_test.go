package etcd

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

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
