package redis

import (
	"fmt"
	"log/slog"
	"reflect"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/flight"
)

// BackendName is the backend's name, in election.SessionInfo.Backend and in logs.
const BackendName = "redis"

// Backend is the Redis implementation of election.Backend. It is safe for
// concurrent use and may serve several resources. Its Close ends its
// release-notice subscription; an elector built on it closes it when the
// elector is closed, so give each elector its own Backend, as New does.
type Backend struct {
	client goredis.UniversalClient
	run    *limiter // the client, at most MaxRequests requests at a time
	opts   BackendOptions
	log    *slog.Logger
	db     int
	hub    *hub
	closes bool // Close also closes client (OpenBackend, OpenURL)

	mu     sync.Mutex
	closed bool
	floors map[string]uint64 // resource -> highest term seen
	owned  map[string]bool   // tokens of this backend's sessions that lead, and of its live leases (true)

	// acquiring has the acquisition in flight of each leader key, which
	// the other candidates of this process for the key wait for (see
	// session.Acquire).
	acquiring flight.Group[election.Acquisition]
	// reading has the read in flight of each leader key after each
	// notice, which the key's other watchers share (see Watch).
	reading flight.Group[readResult]
}

var _ election.Backend = (*Backend)(nil)

// New returns an elector for opts that campaigns through client, a go-redis
// client for a single server, a Sentinel-managed primary or a Redis Cluster.
// The elector does not close client. It fails with an *election.OptionError
// if opts are invalid, or naming client if client is nil (a nil interface or
// a nil pointer): Redis has no environment to make one from; OpenURL makes
// one from a URL.
//
// Set ContextTimeoutEnabled in the client's options: without it go-redis
// applies its own read and write timeouts instead of the deadlines the
// elector gives each request (New logs a warning when it can tell).
//
// With opts.Session set, the elector campaigns on that shared session, and
// on its Backend, which must be a *Backend of this package, and on its
// client: client must be nil or that Backend's client, and
// opts.Redis.KeyPrefix empty or the Backend's. The elector then does not
// close the Backend: its owner does, after closing the session.
func New(client goredis.UniversalClient, opts Options) (*election.Elector, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Session != nil {
		return newShared(client, opts)
	}
	bo := opts.Redis
	if bo.Logger == nil {
		bo.Logger = opts.Logger
	}
	b, err := NewBackend(client, bo)
	if err != nil {
		return nil, err
	}
	el, err := election.NewOwning(b, opts.Options)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	return el, nil
}

// newShared returns an elector for opts on the backend of opts.Session.
func newShared(client goredis.UniversalClient, opts Options) (*election.Elector, error) {
	b, ok := opts.Session.Backend().(*Backend)
	if !ok {
		return nil, &election.OptionError{Field: "Session", Rule: "must be a shared session of a redis Backend", Value: opts.Session.Backend().Name()}
	}
	if !isNil(client) && client != b.client {
		return nil, &election.OptionError{Field: "client", Rule: "must be nil or the client of the Backend of Options.Session", Value: "another client"}
	}
	if opts.Redis.KeyPrefix != "" && opts.Redis.KeyPrefix != b.opts.KeyPrefix {
		return nil, &election.OptionError{Field: "Redis.KeyPrefix", Rule: fmt.Sprintf("must be empty or the KeyPrefix of the Backend of Options.Session, %q", b.opts.KeyPrefix), Value: fmt.Sprintf("%q", opts.Redis.KeyPrefix)}
	}
	if err := sharable(b.client); err != nil {
		return nil, err
	}
	return election.New(b, opts.Options)
}

// NewBackend returns a Backend that uses client, which it does not close.
// Build an elector on it with election.New, or use New, which does both. A
// nil client is refused with an *election.OptionError naming client.
func NewBackend(client goredis.UniversalClient, opts BackendOptions) (*Backend, error) {
	if isNil(client) {
		return nil, &election.OptionError{Field: "client", Rule: "must not be nil"}
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.WithDefaults()
	b := &Backend{
		client: client,
		run:    newLimiter(client, opts.MaxRequests),
		opts:   opts,
		log:    opts.Logger.With("backend", BackendName),
		db:     clientDB(client),
		floors: map[string]uint64{},
		owned:  map[string]bool{},
	}
	b.hub = newHub(client, b.log)
	b.hub.read = b.readRecord
	b.hub.maxReaders = max(1, opts.MaxRequests/2)
	if enabled, known := contextTimeouts(client); known && !enabled {
		b.log.Warn("the go-redis client ignores context deadlines; set ContextTimeoutEnabled in its options so that every request ends by the deadline the elector gives it")
	}
	return b, nil
}

// Name returns "redis".
func (b *Backend) Name() string { return BackendName }

// Close ends the backend's release-notice subscription and waits for its
// goroutine; a backend from OpenBackend or OpenURL also closes its client.
// Calls after Close fail with an error wrapping election.ErrClosed. Calling
// Close again returns nil.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.hub.close()
	if b.closes {
		if err := b.client.Close(); err != nil {
			return fmt.Errorf("redis: close client: %w", err)
		}
	}
	return nil
}

func (b *Backend) check() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed()
	}
	return nil
}

// errClosed is the error of a call to a closed Backend.
func errClosed() error { return fmt.Errorf("redis: backend: %w", election.ErrClosed) }

func (b *Backend) keys(resource string) keys {
	return newKeys(b.opts.KeyPrefix, resource, b.db)
}

// observe remembers the highest term seen for resource: the acquire script
// never issues a term at or below it, so that terms keep growing even if the
// server lost its counter (a restart without persistence, a failover to a
// replica that had not received it, a FLUSHALL).
func (b *Backend) observe(resource string, term uint64) {
	if term == 0 {
		return
	}
	b.mu.Lock()
	if term > b.floors[resource] {
		b.floors[resource] = term
	}
	b.mu.Unlock()
}

// own records whether the session with token leads, as far as it knows.
func (b *Backend) own(token string, leads bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if leads {
		b.owned[token] = false
	} else {
		delete(b.owned, token)
	}
}

// owns reports whether token is a leading session of this backend, which
// renews the key itself and learns of its loss when a renewal fails.
func (b *Backend) owns(token string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.owned[token]
	return ok
}

// ownLease records that token is a live lease of this backend.
func (b *Backend) ownLease(token string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.owned[token] = true
}

// leased reports whether token is a live lease of this backend. A record
// held through it changes only with a notice (a release, an acquisition, a
// keyspace event), or with the lease's next renewal, which wakes the Watch
// calls of each record it finds changed, or with the loss of the lease.
func (b *Backend) leased(token string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.owned[token]
}

func (b *Backend) floor(resource string) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.floors[resource]
}

// isNil reports whether c is nil, or a nil pointer of a client type, whose
// methods would panic.
func isNil(c goredis.UniversalClient) bool {
	if c == nil {
		return true
	}
	v := reflect.ValueOf(c)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// clientDB returns the database number the client selects, for the name of
// the keyspace-notification channel. Cluster clients always use 0.
func clientDB(c goredis.UniversalClient) int {
	if o, ok := c.(interface{ Options() *goredis.Options }); ok {
		return o.Options().DB
	}
	return 0
}

// contextTimeouts reports whether the client honours context deadlines, when
// its type tells.
func contextTimeouts(c goredis.UniversalClient) (enabled, known bool) {
	switch c := c.(type) {
	case *goredis.Client:
		return c.Options().ContextTimeoutEnabled, true
	case *goredis.ClusterClient:
		return c.Options().ContextTimeoutEnabled, true
	}
	return false, false
}
