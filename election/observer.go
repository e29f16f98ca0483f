package election

import (
	"errors"
	"fmt"
	"time"
)

// Observer receives the events of an elector's engine, for metrics, traces
// or health checks. Attach it with Options.Observers; the renewals of a
// SharedSession, which serve every term on it, are the session's own events
// (SessionOptions.Observers). Every field is optional: a nil function is not
// called, and fields may be added in later versions, so set them by name.
//
// The engine calls each function synchronously, where the event happens:
// on its own goroutines, or on the caller's for a failed Elector.Leader (a
// StoreFailed with OpRead). A function must return quickly and must not
// block (on the store, on a lock held across calls of the elector, on a
// full channel); it must not panic, which would crash the process like a
// panic on any goroutine. It may be called concurrently with the other
// functions of the same Observer (a renewal while a term ends), so it must
// be safe for concurrent use. It may call the elector's IsLeader and State,
// but not Close, Release or Leader. The event structs are values, valid
// after the call returns.
//
// An elector with no Observer pays nothing for this: no event is built and
// nothing is allocated.
type Observer struct {
	// TermStarted is called as a term begins, before the handler's leader
	// call.
	TermStarted func(TermStart)
	// TermEnded is called once per term, as soon as the term ends (its
	// context is cancelled), with the cause of the end: on the goroutine
	// that ends it, or at once after. The handler's leader call may still
	// be running (see HandlerOverran).
	TermEnded func(TermEnd)
	// Renewed is called after every renewal of a session, successful or
	// not, with its latency and the time it left before the step-down
	// deadline. A failed renewal is also a StoreFailed.
	Renewed func(Renewal)
	// StoreFailed is called for every failed store request, by operation.
	StoreFailed func(StoreFailure)
	// StoreRecovered is called for the first successful store request of
	// an elector, or of a shared session, after one or more failed ones:
	// the store can be reached again.
	StoreRecovered func(StoreRecovery)
	// HandlerOverran is called while a leader call of the handler keeps
	// running after its term ended: at a check every TTL from the start of
	// the call, and once more, with Returned set, when the call returns
	// after such a report.
	HandlerOverran func(HandlerOverrun)
	// Stopped is called once as an elector stops campaigning (Close, or
	// the end of Start's context), after its other events; for the
	// observers of a SharedSession, once its Close has ended the store
	// session. Whatever is kept for it (a health state, a metric's series)
	// can be dropped.
	Stopped func(Stop)
}

// Source names what an event is about.
type Source struct {
	// Resource and ID are the elector's Options.Resource and Options.ID;
	// both empty for an event of a SharedSession.
	Resource string
	ID       string
	// Term is the term the event is about, or the term being led when it
	// happened; 0 when none.
	Term uint64
	// Session is the ID of the store session; empty before there is one.
	Session string
	// Backend is the backend's name (Backend.Name).
	Backend string
}

// TermStart is a term that began.
type TermStart struct {
	Source
	// TTL is the session's TTL, which bounds the term without renewals.
	TTL time.Duration
}

// TermEnd is a term that ended.
type TermEnd struct {
	Source
	// Cause is why the term ended.
	Cause EndCause
	// Err is the cause as the term's context reports it (context.Cause).
	Err error
	// Duration is how long the term lasted, from its start to its end.
	Duration time.Duration
}

// Renewal is one renewal of a session.
type Renewal struct {
	Source
	// Latency is how long the renewal request took.
	Latency time.Duration
	// Err is why the renewal failed; nil when it succeeded.
	Err error
	// Margin is the time that was left, when the reply came, before the
	// session's step-down deadline as it stood when the renewal was sent:
	// how close the session came to ending its terms. It is negative when
	// the reply came after the deadline (see Late).
	Margin time.Duration
}

// Late reports whether the reply came at or after the step-down deadline,
// too late to keep the session's terms.
func (r Renewal) Late() bool { return r.Margin <= 0 }

// StoreFailure is a store request that failed.
type StoreFailure struct {
	Source
	// Op is the kind of request.
	Op Op
	// Err is the request's error; errors.Is tells ErrPermissionDenied,
	// ErrSessionLost and context.DeadlineExceeded (the request's timeout).
	Err error
	// Latency is how long the request took.
	Latency time.Duration
}

// StoreRecovery is the first successful store request after failed ones.
type StoreRecovery struct {
	Source
	// Op is the kind of the successful request.
	Op Op
	// Failures is the number of failed requests in a row before it.
	Failures int
}

// HandlerOverrun is a leader call of the handler still running after its
// term ended.
type HandlerOverrun struct {
	Source
	// Overrun is how long the call has run since the term ended.
	Overrun time.Duration
	// Returned is set on the last report, made as the call returns.
	Returned bool
}

// Stop is an elector, or a shared session, that stopped.
type Stop struct {
	Source
}

// Op is a kind of store request, as StoreFailure reports it. Its values are
// short lower-case words, fit for a metric label.
type Op string

// The kinds of store requests.
const (
	// OpCreateSession creates a session (a Consul session, an etcd lease,
	// a shared session's lease).
	OpCreateSession Op = "create_session"
	// OpAcquire tries to acquire the leadership.
	OpAcquire Op = "acquire"
	// OpRenew renews a session.
	OpRenew Op = "renew"
	// OpRelease gives the leadership up and ends a session.
	OpRelease Op = "release"
	// OpWatch is a blocking read of the leadership, by a follower, by a
	// leader watching its own record, or for Elector.WatchLeader; through
	// a RecordWatcher, a leader's watch reports a failure as it happens,
	// and a watch taken again after failures as a success.
	OpWatch Op = "watch"
	// OpRead is a read of the leadership for Elector.Leader, or for
	// Elector.WatchLeader with after == 0.
	OpRead Op = "read"
	// OpRaiseTermFloor raises the store's term floor (TermFloorRaiser).
	OpRaiseTermFloor Op = "raise_term_floor"
)

// EndCause is why a term ended, as TermEnd reports it.
type EndCause int

// The causes of the end of a term. The zero value is CauseUnknown.
const (
	// CauseUnknown is a cause not listed here.
	CauseUnknown EndCause = iota
	// CauseReleased: Elector.Release gave the leadership up (ErrReleased).
	CauseReleased
	// CauseLost: the store shows another candidate as the leader, or none;
	// the record was taken or deleted (ErrLeadershipLost).
	CauseLost
	// CauseSessionLost: the store ended the session (it expired, was
	// destroyed, or a shared session ended) (ErrSessionLost).
	CauseSessionLost
	// CauseStoreUnreachable: no renewal succeeded before the step-down
	// deadline (ErrLeaseExpired).
	CauseStoreUnreachable
	// CauseHandlerError: the handler's leader call returned an error
	// (ErrHandlerFailed).
	CauseHandlerError
	// CauseHandlerPanic: the handler's leader call panicked (*PanicError).
	CauseHandlerPanic
	// CauseClosed: the elector was closed, its Start context cancelled, or
	// its SharedSession closed (ErrSessionClosed).
	CauseClosed
)

var causeNames = [...]string{
	CauseUnknown:          "unknown",
	CauseReleased:         "released",
	CauseLost:             "lost",
	CauseSessionLost:      "session_lost",
	CauseStoreUnreachable: "store_unreachable",
	CauseHandlerError:     "handler_error",
	CauseHandlerPanic:     "handler_panic",
	CauseClosed:           "closed",
}

// String returns the cause as a short lower-case word, fit for a metric
// label: "released", "lost", "session_lost", "store_unreachable",
// "handler_error", "handler_panic", "closed" or "unknown".
func (c EndCause) String() string {
	if c < 0 || int(c) >= len(causeNames) {
		return "unknown"
	}
	return causeNames[c]
}

// causeOf returns the EndCause of a term that ended with err, the term
// context's cause (context.Cause). closed reports whether the elector was
// stopping (closed, or its Start context cancelled) when the term ended.
func causeOf(err error, closed bool) EndCause {
	switch {
	case errors.Is(err, ErrReleased):
		return CauseReleased
	case errors.Is(err, ErrHandlerFailed):
		if pe := (*PanicError)(nil); errors.As(err, &pe) {
			return CauseHandlerPanic
		}
		return CauseHandlerError
	case errors.Is(err, ErrLeadershipLost):
		return CauseLost
	case errors.Is(err, ErrLeaseExpired):
		return CauseStoreUnreachable
	case errors.Is(err, ErrSessionClosed), closed:
		return CauseClosed
	case errors.Is(err, ErrSessionLost):
		return CauseSessionLost
	case err != nil:
		// A shared session ended for another cause (another elector on it
		// could not give its resource up).
		return CauseSessionLost
	}
	return CauseUnknown
}

// validateObservers reports a nil entry of an Observers option.
func validateObservers(obs []*Observer) error {
	for i, o := range obs {
		if o == nil {
			return &OptionError{Field: "Observers", Rule: fmt.Sprintf("must not hold a nil *Observer (index %d)", i)}
		}
	}
	return nil
}
