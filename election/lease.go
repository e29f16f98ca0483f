package election

import (
	"context"
	"time"
)

// SessionSharer is implemented by backends whose store sessions can hold the
// leadership of any number of resources at once: a Consul session any
// number of locks, an etcd lease any number of keys. A SharedSession needs
// one. Every backend of this module implements it; Redis, which has no
// sessions, emulates one.
//
// The contract adds to Backend's:
//
//   - NewLease creates a store session whose lifetime the store enforces as
//     for Backend.NewSession: unless Lease.Renew succeeds again, the store
//     ends it, and frees every leadership it holds, no earlier than
//     LeaseParams.TTL after the last successful renewal (or creation) was
//     sent, and no leadership held through it outlives it.
//   - A Claim made by Lease.Claim acquires through the lease: the record it
//     holds shows Record.Session equal to the lease's SessionInfo.ID. One
//     renewal of the lease keeps every claim's leadership.
//   - Closing a claim gives up its resource only; closing the lease gives
//     up every resource still held through it, then ends the store session.
type SessionSharer interface {
	// NewLease creates a store session for the electors of a SharedSession.
	NewLease(ctx context.Context, p LeaseParams) (Lease, error)
}

// AcquireLimiter is an optional interface of a SessionSharer whose store
// requests share a bounded number of connections or request slots. A
// SharedSession lets at most MaxAcquiring of its electors acquire at a
// time; the others wait for their turn before their acquisition begins, so
// that a burst (thousands of resources started at once) does not spend the
// requests' RequestTimeout waiting for a connection, nor take every
// connection from the session's renewals and its electors' reads.
type AcquireLimiter interface {
	// MaxAcquiring returns how many acquisitions of one shared session may
	// be in flight at once; 0 or less sets no bound. It must not block.
	MaxAcquiring() int
}

// LeaseParams describes a Lease.
type LeaseParams struct {
	// TTL is how long the store keeps the lease after its last renewal.
	TTL time.Duration
	// Name describes the process holding the lease, for the store's own
	// listing (a Consul session's name); it may be empty.
	Name string
}

// Lease is one store session shared by the electors of a SharedSession: the
// engine renews it, and enforces its step-down deadline, once for all of
// them. The engine uses a lease until it is lost or the SharedSession is
// closed, then closes it (after every claim on it was closed) and creates a
// new one. A Lease must be safe for concurrent use.
type Lease interface {
	// Info describes the store session. It must not block.
	Info() SessionInfo

	// Renew extends the lease by its TTL, measured from no earlier than the
	// moment Renew was called, and with it every leadership held through
	// it. It returns an error wrapping ErrSessionLost when the store no
	// longer has the lease. A claim that lost its resource alone (the
	// record was deleted from outside) is not an error of the lease: the
	// engine learns of it by watching the record.
	Renew(ctx context.Context) error

	// Claim returns the handle through which the candidate p campaigns for
	// p.Resource on this lease (p.TTL is the lease's). It sends no request.
	// It fails when the lease has an open claim for that resource already:
	// a lease leads a resource at most once.
	Claim(p SessionParams) (Claim, error)

	// Close gives up every leadership still held through the lease, and
	// then ends the store session. It is called once, also after the lease
	// was lost, after every claim on it was closed.
	Close(ctx context.Context) error
}
