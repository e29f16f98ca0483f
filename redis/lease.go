package redis

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/election"
)

var (
	_ election.SessionSharer  = (*Backend)(nil)
	_ election.AcquireLimiter = (*Backend)(nil)
)

// MaxAcquiring returns half of BackendOptions.MaxRequests, at least 1: the
// acquisitions a shared session has in flight at a time, leaving the other
// slots to its electors' reads and releases.
func (b *Backend) MaxAcquiring() int { return max(1, cap(b.run.slots)/2) }

// NewLease creates the emulated store session of an election.SharedSession:
// a random token, and the lease key "<KeyPrefix>:lease:<token>", a set of
// the leader keys held through it, which expires TTL after its last
// renewal. A claim acquires with the lease's token, and its leader key
// expires at the same millisecond as the lease key. Each renewal is one
// script call that extends the lease key and every leader key in its set
// together, so no leadership outlives the lease.
//
// The leader keys of different resources lie in different Redis Cluster
// hash slots, which one script cannot touch: NewLease fails on a cluster
// client (or a go-redis Ring) with an *election.OptionError for the field
// Session.
func (b *Backend) NewLease(ctx context.Context, p election.LeaseParams) (election.Lease, error) {
	if err := b.check(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redis: new lease: %w", err)
	}
	if err := sharable(b.client); err != nil {
		return nil, err
	}
	if p.TTL < time.Millisecond {
		return nil, &election.OptionError{Field: "TTL", Rule: "must be at least 1ms for Redis", Value: p.TTL.String()}
	}
	token, err := newToken()
	if err != nil {
		return nil, fmt.Errorf("redis: new lease token: %w", err)
	}
	l := &lease{
		b:      b,
		key:    leaseKey(b.opts.KeyPrefix, token),
		token:  token,
		ttl:    p.TTL,
		ttlMS:  millis(p.TTL),
		claims: map[string]struct{}{},
	}
	l.info = election.SessionInfo{Backend: BackendName, ID: token, TTL: p.TTL, Fields: map[string]string{"lease": l.key}}
	n, err := leaseCreateScript.Run(ctx, b.run, []string{l.key}, l.ttlMS).Int64()
	if err != nil {
		return nil, wrap("create lease", l.key, err)
	}
	if n != 1 {
		return nil, fmt.Errorf("redis: create lease %s: the key exists already", l.key)
	}
	// The lease's renewals report the loss of any of its records: Watch
	// needs no expiry timer for them.
	b.ownLease(token)
	return l, nil
}

// sharable fails for a client whose keys of different resources may lie
// in different hash slots, or on different shards of a Ring.
func sharable(c goredis.UniversalClient) error {
	switch c.(type) {
	case *goredis.ClusterClient:
		return &election.OptionError{Field: "Session", Rule: "cannot be shared on a Redis Cluster client: one script must renew the keys of every resource, which lie in different hash slots; use private sessions there", Value: "Redis Cluster"}
	case *goredis.Ring:
		return &election.OptionError{Field: "Session", Rule: "cannot be shared on a go-redis Ring: one script must renew the keys of every resource, which lie on different shards; use private sessions there", Value: "Ring"}
	}
	return nil
}

// lease is an emulated store session shared by the claims of many
// resources.
type lease struct {
	b     *Backend
	key   string // the set of leader keys held through the lease
	token string
	ttl   time.Duration
	ttlMS string
	info  election.SessionInfo

	mu     sync.Mutex
	claims map[string]struct{} // resources with an open claim
	closed bool
}

func (l *lease) Info() election.SessionInfo { return l.info }

// Renew extends the lease key and every leader key still held through it
// by the TTL, in one script call. It fails with election.ErrSessionLost
// when the lease key is gone. Leader keys no longer held (deleted or
// overwritten from outside) leave the set, and their Watch calls are woken
// to read the change.
//
// It takes none of the backend's request slots: a burst of the electors'
// requests never delays the renewal that keeps all their terms.
func (l *lease) Renew(ctx context.Context) error {
	res, err := leaseRenewScript.Run(ctx, l.b.client, []string{l.key}, l.token+"\n", l.ttlMS).Slice()
	if err != nil {
		return wrap("renew lease", l.key, err)
	}
	if len(res) == 0 {
		return fmt.Errorf("redis: renew lease %s: unexpected reply %v", l.key, res)
	}
	if flag, _ := res[0].(int64); flag != 1 {
		l.b.own(l.token, false)
		return fmt.Errorf("redis: renew lease %s: the lease key is gone (expired, deleted or flushed): %w", l.key, election.ErrSessionLost)
	}
	for _, v := range res[1:] {
		if k, ok := v.(string); ok {
			if resource, ok := l.resourceOf(k); ok {
				l.b.hub.poke(resource)
			}
		}
	}
	return nil
}

// resourceOf returns the resource whose leader key is k.
func (l *lease) resourceOf(k string) (string, bool) {
	head, tail := l.b.opts.KeyPrefix+":{", "}:leader"
	if !strings.HasPrefix(k, head) || !strings.HasSuffix(k, tail) || len(k) < len(head)+len(tail) {
		return "", false
	}
	return k[len(head) : len(k)-len(tail)], true
}

// Claim returns the handle through which candidate p acquires p.Resource
// with the lease's token. It sends no request.
func (l *lease) Claim(p election.SessionParams) (election.Claim, error) {
	if err := l.b.check(); err != nil {
		return nil, err
	}
	p.TTL = l.ttl
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("redis: claim %q: lease %s: %w", p.Resource, l.key, election.ErrClosed)
	}
	if _, ok := l.claims[p.Resource]; ok {
		return nil, fmt.Errorf("%w: redis: claim %q: lease %s has an open claim for it already", election.ErrInvalidOptions, p.Resource, l.key)
	}
	s, err := l.b.newSession(p, l.token, l)
	if err != nil {
		return nil, err
	}
	l.claims[p.Resource] = struct{}{}
	return s, nil
}

// forget ends the open claim of resource.
func (l *lease) forget(resource string) {
	l.mu.Lock()
	delete(l.claims, resource)
	l.mu.Unlock()
}

// Close releases every leader key still held through the lease,
// announcing each release, and deletes the lease key, in one script call.
func (l *lease) Close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.b.own(l.token, false)
	if err := leaseCloseScript.Run(ctx, l.b.run, []string{l.key}, l.token+"\n").Err(); err != nil {
		return wrap("close lease", l.key, err)
	}
	return nil
}
