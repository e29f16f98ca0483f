package redis

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
)

// TestLeaseRenewTakesNoSlot: a shared session's renewal is sent while
// every request slot of the backend is taken, as in a burst of its
// electors' acquisitions.
func TestLeaseRenewTakesNoSlot(t *testing.T) {
	srv := testserver.StartRedis(t, testserver.RedisOptions{})
	c := goredis.NewClient(&goredis.Options{Addr: srv.Addr()})
	b, err := NewBackend(c, BackendOptions{MaxRequests: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = b.Close(); _ = c.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := b.NewLease(ctx, election.LeaseParams{TTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.run.take(ctx); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(ctx, time.Second)
	err = l.Renew(rctx)
	rcancel()
	b.run.done()
	if err != nil {
		t.Errorf("Renew with the one request slot taken: %v", err)
	}
	if err := l.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
}
