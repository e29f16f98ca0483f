package backends

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// leasingMigration is a migration whose stores both share sessions: it
// shares sessions too, with a lease on each store.
type leasingMigration struct {
	*migration
	from, to election.SessionSharer
}

var _ election.SessionSharer = (*leasingMigration)(nil)

// NewLease creates a lease on from, then on to; it fails, closing the
// first, when either fails.
func (m *leasingMigration) NewLease(ctx context.Context, p election.LeaseParams) (election.Lease, error) {
	l1, err := m.from.NewLease(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("migrate: %s: %w", m.migration.from.Name(), err)
	}
	l2, err := m.to.NewLease(ctx, p)
	if err != nil {
		_ = l1.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("migrate: %s: %w", m.migration.to.Name(), err)
	}
	m.mu.Lock()
	m.local[l1.Info().ID] = true
	m.mu.Unlock()
	return &pairLease{m: m.migration, from: l1, to: l2, ttl: p.TTL}, nil
}

// pairLease is a lease on each store, held together.
type pairLease struct {
	m        *migration
	from, to election.Lease
	ttl      time.Duration
}

func (l *pairLease) Info() election.SessionInfo {
	return pairInfo(l.m, l.from.Info(), l.to.Info(), l.ttl)
}

// Renew renews both leases, and succeeds only when both did: the loss of
// either (an error wrapping election.ErrSessionLost) loses the pair. Both
// are renewed even when the first fails, so that a transient failure of one
// store does not cost the other its renewal.
func (l *pairLease) Renew(ctx context.Context) error {
	type result struct {
		name string
		err  error
	}
	done := make(chan result, 1)
	go func() { done <- result{l.m.to.Name(), l.to.Renew(ctx)} }()
	err1 := l.from.Renew(ctx)
	r := <-done
	var errs []error
	if err1 != nil {
		errs = append(errs, fmt.Errorf("migrate: %s: %w", l.m.from.Name(), err1))
	}
	if r.err != nil {
		errs = append(errs, fmt.Errorf("migrate: %s: %w", r.name, r.err))
	}
	return errors.Join(errs...)
}

// Claim returns a claim on each lease, acquired from first and released
// to first, as the sessions of a migration are.
func (l *pairLease) Claim(p election.SessionParams) (election.Claim, error) {
	c1, err := l.from.Claim(p)
	if err != nil {
		return nil, fmt.Errorf("migrate: %s: %w", l.m.from.Name(), err)
	}
	c2, err := l.to.Claim(p)
	if err != nil {
		// The claim on from sent no request yet: closing it is local.
		_ = c1.Close(context.Background())
		return nil, fmt.Errorf("migrate: %s: %w", l.m.to.Name(), err)
	}
	return &pairClaim{m: l.m, from: c1, to: c2, resource: p.Resource, ttl: l.ttl}, nil
}

// Close closes the lease on to, then on from.
func (l *pairLease) Close(ctx context.Context) error {
	err2 := l.to.Close(ctx)
	err1 := l.from.Close(ctx)
	l.m.mu.Lock()
	delete(l.m.local, l.from.Info().ID)
	l.m.mu.Unlock()
	if err2 != nil || err1 != nil {
		return fmt.Errorf("migrate: close: %w", errors.Join(err2, err1))
	}
	return nil
}
