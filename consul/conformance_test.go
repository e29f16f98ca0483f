package consul_test

import (
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/conformance/testserver"
)

// TestConformance runs the suite with plain sessions: TTL 10 s, Consul's
// minimum, and a lock-delay of 1 s. A crashed leader's session lasts up to
// 2×TTL, then the lock-delay runs.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("plain sessions take 2×TTL (20 s) to expire; skipped in -short mode")
	}
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	const ttl, lockDelay = 10 * time.Second, time.Second
	conformance.Run(t, conformance.Config{
		Name:        "consul",
		TTL:         ttl,
		ExpiryBound: 2*ttl + lockDelay,
		Parallel:    true,
		Open:        func(t *testing.T) conformance.Store { return newStore(t, srv, "lockDelay=1s") },
	})
}

// TestConformanceCheckTTL runs the suite with check-bound sessions: a TTL
// check of 2 s, no lock-delay.
func TestConformanceCheckTTL(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	const ttl = 2 * time.Second
	conformance.Run(t, conformance.Config{
		Name:        "consul-checkttl",
		TTL:         ttl,
		ExpiryBound: ttl + 500*time.Millisecond,
		Parallel:    true,
		Open:        func(t *testing.T) conformance.Store { return newStore(t, srv, "checkTTL=2s") },
	})
}

// TestConformanceHandoff runs the suite with check-bound sessions and
// Handoff: releases hand the key over to a registered candidate.
func TestConformanceHandoff(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	const ttl = 2 * time.Second
	conformance.Run(t, conformance.Config{
		Name:        "consul-handoff",
		TTL:         ttl,
		ExpiryBound: ttl + 500*time.Millisecond,
		Parallel:    true,
		Open: func(t *testing.T) conformance.Store {
			// Without NewSharedSession: Handoff is not offered on a shared
			// session, whose claims do not end the session a key is
			// handed over with; the tests of shared sessions are skipped.
			return struct{ conformance.Store }{newStore(t, srv, "checkTTL=2s&handoff=true")}
		},
	})
}
