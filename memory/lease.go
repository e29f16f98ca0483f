package memory

import (
	"context"
	"fmt"
	"sync"

	"github.com/consul-leader/consul-leader/election"
)

var _ election.SessionSharer = (*Conn)(nil)

// NewLease creates a session that expires p.TTL after its last renewal,
// and may lead any number of resources.
func (c *Conn) NewLease(ctx context.Context, p election.LeaseParams) (election.Lease, error) {
	id, err := c.newSession(ctx, p.TTL)
	if err != nil {
		return nil, err
	}
	return &lease{conn: c, info: election.SessionInfo{Backend: BackendName, ID: id, TTL: p.TTL}, claims: map[string]bool{}}, nil
}

// lease is a session shared by the claims of many resources.
type lease struct {
	conn *Conn
	info election.SessionInfo

	mu     sync.Mutex
	claims map[string]bool // the resources with an open claim
}

func (l *lease) Info() election.SessionInfo { return l.info }

func (l *lease) Renew(ctx context.Context) error { return l.conn.renew(ctx, l.info.ID) }

func (l *lease) Claim(p election.SessionParams) (election.Claim, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.claims[p.Resource] {
		return nil, fmt.Errorf("memory: session %s has an open claim for %q already", l.info.ID, p.Resource)
	}
	l.claims[p.Resource] = true
	return &claim{lease: l, resource: p.Resource, leaderID: p.ID, value: append([]byte(nil), p.Value...)}, nil
}

// Close frees every record the session holds and ends it.
func (l *lease) Close(ctx context.Context) error {
	s := l.conn.store
	if err := s.reach(ctx, l.conn.name); err != nil {
		return err
	}
	s.mu.Lock()
	s.endSession(s.sessions[l.info.ID])
	s.mu.Unlock()
	return s.reply(ctx, l.conn.name)
}

// claim is one resource campaigned for on a lease.
type claim struct {
	lease    *lease
	resource string
	leaderID string
	value    []byte
}

func (c *claim) Info() election.SessionInfo { return c.lease.info }

func (c *claim) Acquire(ctx context.Context) (election.Acquisition, error) {
	return c.lease.conn.acquire(ctx, c.lease.info.ID, c.resource, c.leaderID, c.value)
}

// Close frees the resource's record if the lease holds it, and leaves the
// lease as it is.
func (c *claim) Close(ctx context.Context) error {
	l := c.lease
	l.mu.Lock()
	delete(l.claims, c.resource)
	l.mu.Unlock()
	s := l.conn.store
	if err := s.reach(ctx, l.conn.name); err != nil {
		return err
	}
	s.mu.Lock()
	s.release(l.info.ID, c.resource)
	s.mu.Unlock()
	return s.reply(ctx, l.conn.name)
}
