package election

import (
	"context"
	"time"
)

// Backend is the store-specific half of an elector: the few primitives that
// differ between Consul, etcd, Redis and the in-memory store. The engine in
// this package builds every election semantic on top of them, so a backend
// never decides who leads, when to step down or what a handler sees.
//
// A Backend may serve any number of resources and electors; it must be
// safe for concurrent use. An elector made by New leaves its backend open:
// the backend belongs to whoever made it. An elector made by NewOwning
// closes it in Elector.Close if it implements io.Closer: the backend
// packages' constructors (consul.New, etcd.New, ...) build one backend per
// elector that way.
//
// The contract, for someone writing a backend:
//
//   - Sessions are the unit of liveness. NewSession creates one whose lifetime
//     the store enforces: unless Session.Renew succeeds again, the store ends
//     the session no earlier than SessionParams.TTL after the last successful
//     renewal (or creation) was sent. A store that waits longer (Consul waits
//     up to twice the TTL) is fine; one that may end it sooner is not.
//   - Leadership of a resource is held by at most one session at a time, and
//     is acquired only through Session.Acquire. When a session ends, for any
//     reason, the store frees the leadership it held.
//   - A Record describes the leadership of a resource. It is held by a session
//     exactly when Record.Session equals that session's SessionInfo.ID.
//   - Every leadership acquisition yields a Record.Term greater than every
//     Term the store issued before for that resource, also after the record or
//     the store's state for the resource was deleted.
//   - Errors that mean the session no longer exists wrap ErrSessionLost;
//     refusals for lack of rights wrap ErrPermissionDenied. Any other error is
//     taken as transient and retried.
//   - Every method honours its context: it returns promptly when the context
//     is cancelled or its deadline passes. The engine gives each call a
//     deadline, shorter than the time it may still act as leader (for Watch:
//     wait + Options.RequestTimeout), and cancels blocked calls when a term or
//     the elector ends.
type Backend interface {
	// Name identifies the backend in Leadership.Session and in logs, for
	// example "consul".
	Name() string

	// NewSession creates a session for one campaign of one candidate.
	NewSession(ctx context.Context, p SessionParams) (Session, error)

	// Watch returns the leadership record of resource. With after == 0 it
	// reads the current record at once, and the read must be linearizable
	// (never older than a write that completed before it began). Otherwise it
	// blocks until the record's Revision differs from after, or until wait
	// has passed, or until ctx ends, and returns the record then current. A
	// backend may return early and spuriously: the engine compares revisions.
	Watch(ctx context.Context, resource string, after uint64, wait time.Duration) (Record, error)
}

// SessionParams describes the candidate a session campaigns for.
type SessionParams struct {
	// Resource is the name of what is being led, already validated.
	Resource string
	// ID is the candidate's identity, published as Record.LeaderID.
	ID string
	// Value is published with the leadership as Record.Value.
	Value []byte
	// TTL is how long the store keeps the session after its last renewal.
	TTL time.Duration
}

// Session is one candidate's liveness in the store, and the handle through
// which it acquires leadership. The engine uses a session for at most one
// term: after the term, or once the session is lost, it closes the session
// and creates a new one.
type Session interface {
	Claim

	// Renew extends the session by its TTL, measured from no earlier than
	// the moment Renew was called. It returns an error wrapping
	// ErrSessionLost when the store no longer has the session, or when the
	// session held leadership and no longer does.
	Renew(ctx context.Context) error
}

// Claim is the handle through which one candidate acquires the leadership
// of one resource. A Session is the claim of its own resource; a Lease
// makes a Claim for each resource campaigned for on it.
type Claim interface {
	// Info describes the session, for Leadership.Session. It must not block.
	// Its ID is the one Record.Session shows for a record this claim holds.
	Info() SessionInfo

	// Acquire tries to make this claim's session the leader of its resource.
	// It reports the record after the attempt: held by this session when it
	// succeeded, otherwise the current leader's or a free record. Acquire
	// must be idempotent: calling it while already leading returns the
	// record held, with the same Term.
	Acquire(ctx context.Context) (Acquisition, error)

	// Close gives up the leadership this claim holds, if any, and its place
	// in a store's queue of candidates. A Session then ends the session, in
	// that order, so that a waiting candidate can acquire at once (Consul,
	// for one, applies its lock-delay when a session ends while still
	// holding); a Lease's claim leaves the lease as it is. It is called
	// once, also after the session was lost.
	Close(ctx context.Context) error
}

// Acquisition is the outcome of Session.Acquire.
type Acquisition struct {
	// Record is the resource's leadership after the attempt.
	Record
	// Renewed reports that the acquisition itself restarted the session's
	// TTL, as a Redis SET with PX does. The engine then measures its
	// step-down deadline from the moment Acquire was called.
	Renewed bool
	// RetryAfter, when the resource is free but could not be acquired, is
	// how long the store refuses acquisitions (Consul's lock-delay). Zero
	// lets the engine wait its RetryInterval.
	RetryAfter time.Duration
}

// Record is the leadership of a resource as the store holds it.
type Record struct {
	// LeaderID is the leader's Options.ID; empty when there is no leader.
	LeaderID string
	// Value is the leader's Options.Value.
	Value []byte
	// Term is the leader's fencing token; zero when there is no leader.
	Term uint64
	// Session is the store's identity of the leader's session, equal to its
	// SessionInfo.ID; empty when there is no leader.
	Session string
	// Revision identifies this state of the record for Backend.Watch: it
	// changes whenever the leadership changes. It is never zero.
	Revision uint64
}

// Free reports whether the record has no leader.
func (r Record) Free() bool { return r.Session == "" }

// TermFloorRaiser is implemented by backends whose terms can be moved up, as
// a live migration between stores needs: the terms a store issues after a
// move must be above every term the other store issued.
type TermFloorRaiser interface {
	// RaiseTermFloor makes every Term the store issues for resource from
	// now on greater than floor. Terms already issued are unchanged, and a
	// floor lower than the current one changes nothing.
	RaiseTermFloor(ctx context.Context, resource string, floor uint64) error
}

// TurnWatcher is implemented by claims whose backend wakes the candidates
// it serves for one resource in turn rather than all at once. When the
// leadership changes, such a backend wakes the one following candidate that
// is to act on the change first: the next in line (etcd: the candidate whose
// key became the first; Redis, on a release notice, and Consul, on a read
// showing the key released: the candidate that has waited longest). The
// others wake once that candidate's turn ends: when its leader call is
// about to begin (TurnTaken), or its Acquire returned without the
// leadership, or it has gone back to waiting, or after a short bound; they
// learn the new leader then. A release among N candidates of one process
// thus wakes the next leader alone, and its leader call begins before N
// goroutines woken at the same moment compete with it for the processors.
//
// A following campaign watches through its claim's WatchTurn instead of
// Backend.Watch; a leader watches its record through RecordWatcher when the
// backend implements it, and through Backend.Watch otherwise.
type TurnWatcher interface {
	// WatchTurn is Backend.Watch of the claim's resource, called by the
	// claim's candidate while it follows or holds off. When it returns a
	// changed record, the engine calls Acquire next unless the record shows
	// another leader that the candidate has queued behind, or the candidate
	// holds off; either way it calls WatchTurn or Acquire again at once, or
	// closes the claim, which a backend may take as the end of the turn.
	WatchTurn(ctx context.Context, after uint64, wait time.Duration) (Record, error)
	// TurnTaken tells that the claim's candidate acted on its turn: the
	// backend ends the turn, if the candidate holds one, and wakes the
	// other candidates. It must not block. The engine calls it after
	// every Acquire that failed or showed another leader, and, for one
	// that returned the leadership, on the leader call's goroutine as the
	// call is about to begin: until then, or until the backend's bound
	// passes, the turn stays on. Acquire itself leaves the turn alone.
	TurnTaken()
}

// OptionsValidator is implemented by backends whose store bounds some
// options further (Consul's TTL of 10 s to 24 h, etcd's whole seconds). New
// calls it with the options, defaults applied, and fails with its error, so
// that such a mistake is reported at once rather than by every campaign.
type OptionsValidator interface {
	// ValidateOptions returns an *OptionError for options the store cannot
	// serve.
	ValidateOptions(o Options) error
}

// RecordWatcher is implemented by backends whose watch of a record can call
// a function instead of keeping a goroutine waiting in Backend.Watch: a
// leader watches its own record for the whole term, and on a shared watch
// (the backend's one watch of many records) that then costs no goroutine
// per leader. The engine watches a leader's record through WatchRecord
// when the backend has it, and through Backend.Watch otherwise; followers
// always use Backend.Watch.
type RecordWatcher interface {
	// WatchRecord watches the record of resource, whose Revision was
	// after, until stop is called. It calls changed with the record each
	// time the backend sees a Revision other than after and than the one
	// it last passed; or with an error, once, when its watch fails, which
	// ends this watch: changed is not called again, and the caller may
	// watch again. A watch never fails merely for lasting long, and a
	// backend may call changed spuriously, with the same Revision.
	//
	// changed runs where the backend learns of the change: on the
	// goroutine of its shared watch, possibly under its locks, and
	// possibly before WatchRecord returns. So it must return quickly, and
	// must neither block nor call the backend. Once stop has returned,
	// changed is not called again, and is not running. stop may be called
	// any number of times, but not from changed.
	WatchRecord(resource string, after uint64, changed func(Record, error)) (stop func())
}
