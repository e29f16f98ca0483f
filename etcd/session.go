package etcd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// session is a private session: a lease of its own, and the single claim
// on it of one candidate for one resource.
type session struct {
	l *lease
	c *claim
}

var (
	_ election.Session     = (*session)(nil)
	_ election.TurnWatcher = (*session)(nil)
)

// NewSession grants a lease of p.TTL, a whole number of seconds. The
// candidate's key is put by Acquire, not here, so that a candidate holding
// back after a Release does not queue.
func (b *Backend) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	if _, err := b.Prefix(p.Resource); err != nil {
		return nil, err
	}
	if err := validateTTL(p.TTL); err != nil {
		return nil, err
	}
	l, err := b.grant(ctx, p.TTL, "resource", p.Resource)
	if err != nil {
		return nil, err
	}
	c, err := l.claim(p)
	if err != nil {
		// Not reached: the prefix was checked, and the lease is new.
		return nil, errors.Join(err, l.Close(ctx))
	}
	return &session{l: l, c: c}, nil
}

// Info describes the session: see claim.Info.
func (s *session) Info() election.SessionInfo { return s.c.Info() }

// Acquire queues the candidate's key: see claim.Acquire.
func (s *session) Acquire(ctx context.Context) (election.Acquisition, error) {
	return s.c.Acquire(ctx)
}

// WatchTurn watches the resource in line: see claim.WatchTurn.
func (s *session) WatchTurn(ctx context.Context, after uint64, wait time.Duration) (election.Record, error) {
	return s.c.WatchTurn(ctx, after, wait)
}

// TurnTaken ends the candidate's turn: see claim.TurnTaken.
func (s *session) TurnTaken() { s.c.TurnTaken() }

// Renew sends one lease keepalive. A lease the store no longer has, or a
// key that was first and has since been seen deleted, is ErrSessionLost.
func (s *session) Renew(ctx context.Context) error {
	if err := s.l.Renew(ctx); err != nil {
		return err
	}
	if s.c.lostFirst() {
		return fmt.Errorf("etcd: %w: key %s no longer leads %s", election.ErrSessionLost, s.c.key, s.c.h.prefix)
	}
	return nil
}

// Close deletes the candidate's key, if it is still bound to the lease, so
// that the next candidate leads at once, and then revokes the lease.
func (s *session) Close(ctx context.Context) error { return s.l.Close(ctx) }
