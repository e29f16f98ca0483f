//go:build go1.25

package election_test

import (
	"context"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// acquireHook is a memory store connection whose claims' acquisitions go
// through hook, which may call the store's acquire, and whose shared
// sessions acquire at most max at a time (0: no bound).
type acquireHook struct {
	*memory.Conn
	max  int
	hook func(ctx context.Context, acquire func(context.Context) (election.Acquisition, error)) (election.Acquisition, error)
}

var _ election.AcquireLimiter = (*acquireHook)(nil)

func (h *acquireHook) MaxAcquiring() int { return h.max }

func (h *acquireHook) NewLease(ctx context.Context, p election.LeaseParams) (election.Lease, error) {
	l, err := h.Conn.NewLease(ctx, p)
	if err != nil {
		return nil, err
	}
	return hookedLease{Lease: l, h: h}, nil
}

type hookedLease struct {
	election.Lease
	h *acquireHook
}

func (l hookedLease) Claim(p election.SessionParams) (election.Claim, error) {
	c, err := l.Lease.Claim(p)
	if err != nil {
		return nil, err
	}
	return hookedClaim{Claim: c, h: l.h}, nil
}

type hookedClaim struct {
	election.Claim
	h *acquireHook
}

func (c hookedClaim) Acquire(ctx context.Context) (election.Acquisition, error) {
	return c.h.hook(ctx, c.Claim.Acquire)
}
