package election

import (
	"context"
	"time"
)

// Handler is called by an elector for every change of leadership it
// observes, one call at a time and in order. A follower notification that
// has not been delivered yet when a newer one arrives is replaced by it, so
// that a slow handler is told the latest state; leader calls, and the
// notification that a term ended, are always delivered. No call names a
// leader with a lower Term than one given to the handler before.
//
// When l.IsLeader is true, ctx is the term's context: it ends when the term
// ends (leadership lost, released, the elector closed, or the handler's own
// error), and it is cancelled before any other candidate can be granted
// leadership. The handler may return at once, treating the call as a
// notification, or block doing the leader's work until ctx ends; the term
// lasts until ctx ends either way. Returning a non-nil error while leading
// gives the term up. A leader checks ctx.Err() right before each write, and
// passes l.Term with it: ctx.Err() is non-nil as soon as the step-down
// deadline has passed, even right after the process resumed from a stop (see
// the package documentation, "Writing as a leader").
//
// When l.IsLeader is false, ctx is the elector's context, and the returned
// error is only logged.
//
// The elector does not campaign again while a leader call of the handler is
// still running, so a handler that blocks past its context delays the next
// term of this elector (and is logged).
type Handler func(ctx context.Context, l Leadership) error

// Leadership is what an elector knows of its resource's leadership.
type Leadership struct {
	// Resource is the name of what is being led.
	Resource string
	// LeaderID is the leader's ID; empty when there is no leader, or when
	// this elector does not know who leads (just after losing leadership,
	// or while the store cannot be reached).
	LeaderID string
	// Value is the leader's Options.Value.
	Value []byte
	// IsLeader reports whether this elector leads.
	IsLeader bool
	// Term is the leader's fencing token: it grows with every new term of
	// the resource. Pass it with every write the leader makes, and have the
	// written system refuse tokens lower than the highest it has seen.
	Term uint64
	// Session describes this elector's own session in the store, if it has
	// one.
	Session SessionInfo
	// Err, when set, is why this elector cannot campaign right now: the
	// store is unreachable, or refuses it (see ErrPermissionDenied). The
	// elector keeps trying; the next successful observation clears it.
	Err error
}

// SessionInfo describes a session in a store.
type SessionInfo struct {
	// Backend is the backend's name, for example "consul".
	Backend string
	// ID is the store's identity of the session: a Consul session ID, an
	// etcd lease ID, a Redis ownership token.
	ID string
	// TTL is the session's time to live in the store.
	TTL time.Duration
	// Fields holds store-specific details, for example a Consul session's
	// node and lock-delay. It may be shared by every description of the
	// session (a shared session's claim builds it once): read it, never
	// modify it.
	Fields map[string]string
}
