package etcd

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/election"
)

// lease is one etcd lease, and the candidates' keys bound to it: one claim
// per resource. A private session is a lease with a single claim; a
// SharedSession's lease holds the claims of every elector on it.
type lease struct {
	b    *Backend
	id   clientv3.LeaseID
	hex  string // the lease ID in hex, the last segment of its keys
	info election.SessionInfo

	mu     sync.Mutex
	claims map[string]*claim // open claims, by resource
	closed bool              // Close has begun: no new claim
}

var (
	_ election.SessionSharer  = (*Backend)(nil)
	_ election.AcquireLimiter = (*Backend)(nil)
	_ election.Lease          = (*lease)(nil)
)

// maxAcquiring is how many acquisitions of one shared session are in
// flight at a time (see Backend.MaxAcquiring).
const maxAcquiring = 64

// MaxAcquiring returns 64: the acquisitions a shared session has in
// flight at a time. The client multiplexes every request on one
// connection, which does not run out; the bound keeps what a burst of
// acquisitions holds at once (its requests, their responses, the
// transport's buffers) small, while etcd still commits many of them in
// each write to its log.
func (b *Backend) MaxAcquiring() int { return maxAcquiring }

// NewLease grants one etcd lease of p.TTL, a whole number of seconds, for
// the electors of a SharedSession: each claim on it puts its candidate's
// key, bound to the lease, under its resource's prefix, and one keepalive
// renews them all. etcd leases have no name: p.Name is not stored.
func (b *Backend) NewLease(ctx context.Context, p election.LeaseParams) (election.Lease, error) {
	if err := validateTTL(p.TTL); err != nil {
		return nil, err
	}
	return b.grant(ctx, p.TTL)
}

// grant grants a lease of ttl, logging with attrs when etcd grants another
// TTL than asked.
func (b *Backend) grant(ctx context.Context, ttl time.Duration, attrs ...any) (*lease, error) {
	sent := time.Now()
	resp, err := b.client.Grant(ctx, int64(ttl/time.Second))
	if err != nil {
		return nil, storeError("grant lease", err)
	}
	if resp.ResponseHeader != nil {
		// A revision below the one known tells of a loss of etcd's data
		// before this lease acquires anything.
		b.noteRevision(resp.ResponseHeader.Revision, sent)
	}
	granted := time.Duration(resp.TTL) * time.Second
	if granted != ttl {
		b.log.Warn("etcd granted a lease TTL other than the election TTL; the store frees a dead leader's election after the granted TTL",
			append(attrs, "ttl", ttl, "granted", granted)...)
	}
	id := leaseID(int64(resp.ID))
	return &lease{
		b:   b,
		id:  resp.ID,
		hex: id,
		info: election.SessionInfo{
			Backend: BackendName,
			ID:      id,
			TTL:     granted,
			Fields:  map[string]string{"lease": id},
		},
		claims: map[string]*claim{},
	}, nil
}

// Info describes the lease. Fields holds "lease", the lease ID in hex.
func (l *lease) Info() election.SessionInfo {
	info := l.info
	info.Fields = maps.Clone(l.info.Fields)
	return info
}

// Renew sends one lease keepalive, which renews every key bound to the
// lease, on the backend's keepalive stream. A lease the store no longer
// has is ErrSessionLost.
func (l *lease) Renew(ctx context.Context) error {
	resp, err := l.b.keepAlive.renew(ctx, l.id)
	if err == nil && resp.TTL <= 0 {
		err = rpctypes.ErrLeaseNotFound
	}
	if err != nil {
		return storeError("renew lease "+l.hex, err)
	}
	return nil
}

// Claim returns the claim of p.Resource on the lease; it sends nothing. It
// fails with election.ErrInvalidOptions for a resource the backend cannot
// serve or one the lease has an open claim for, and with
// election.ErrSessionLost once the lease is closed.
func (l *lease) Claim(p election.SessionParams) (election.Claim, error) {
	return l.claim(p)
}

func (l *lease) claim(p election.SessionParams) (*claim, error) {
	prefix, err := l.b.Prefix(p.Resource)
	if err != nil {
		return nil, err
	}
	l.b.mu.Lock()
	h := l.b.hubLocked(p.Resource, prefix)
	l.b.mu.Unlock()
	c := &claim{
		l:     l,
		h:     h,
		key:   h.prefix + "/" + l.hex,
		value: encodeValue(p.ID, p.Value),
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil, fmt.Errorf("etcd: claim %q on lease %s: %w: the lease is closed", p.Resource, l.hex, election.ErrSessionLost)
	case l.claims[p.Resource] != nil:
		return nil, fmt.Errorf("%w: etcd lease %s has an open claim for %q already", election.ErrInvalidOptions, l.hex, p.Resource)
	}
	l.claims[p.Resource] = c
	return c, nil
}

// Close deletes the keys of the claims still open, so that the next
// candidate of each resource leads at once, and then revokes the lease.
func (l *lease) Close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	open := make([]*claim, 0, len(l.claims))
	for _, c := range l.claims {
		open = append(open, c)
	}
	l.mu.Unlock()
	var errs []error
	for _, c := range open {
		if err := c.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if _, err := l.b.client.Revoke(ctx, l.id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		errs = append(errs, storeError("revoke lease "+l.hex, err))
	}
	return errors.Join(errs...)
}

// release forgets c, once closed.
func (l *lease) release(c *claim) {
	l.mu.Lock()
	if l.claims[c.h.resource] == c {
		delete(l.claims, c.h.resource)
	}
	l.mu.Unlock()
}
