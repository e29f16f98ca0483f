package election

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidOptions is wrapped by every *OptionError.
	ErrInvalidOptions = errors.New("election: invalid options")
	// ErrAlreadyStarted is returned by a second call of Elector.Start.
	ErrAlreadyStarted = errors.New("election: elector already started")
	// ErrClosed is returned by an elector's methods after Close.
	ErrClosed = errors.New("election: elector closed")
	// ErrSessionLost means the store ended the session: it expired, was
	// destroyed, or its leadership was taken away. Backends wrap it.
	ErrSessionLost = errors.New("election: session lost")
	// ErrPermissionDenied means the store refused a request for lack of
	// rights (an ACL token, an etcd role, a Redis ACL user). Backends wrap it.
	ErrPermissionDenied = errors.New("election: permission denied")
	// ErrLeaseExpired ends a term whose session could not be renewed before
	// its local step-down deadline.
	ErrLeaseExpired = errors.New("election: lease not renewed in time, stepped down")
	// ErrLeadershipLost ends a term when the store shows another leader or
	// none (the record was deleted or overwritten from outside).
	ErrLeadershipLost = errors.New("election: leadership lost")
	// ErrReleased ends a term given up by Elector.Release.
	ErrReleased = errors.New("election: leadership released")
	// ErrHandlerFailed ends a term whose handler returned an error; the
	// handler's error is wrapped with it.
	ErrHandlerFailed = errors.New("election: handler failed")
	// ErrSessionClosed is returned by the methods of a closed
	// SharedSession, and by Start of an elector on one; it ends the terms
	// of the session's electors when it is closed, and their handlers are
	// told it (Leadership.Err) as they stop campaigning.
	ErrSessionClosed = errors.New("election: shared session closed")
	// ErrCloseFromHandler is returned by Elector.Close when it is called
	// from within the elector's own handler, which Close would wait for
	// forever. Close does nothing then; use Release in a handler.
	ErrCloseFromHandler = errors.New("election: Close called from within the handler; use Release there")
)

// OptionError reports an invalid option: which field, and the rule it breaks.
type OptionError struct {
	// Field is the option's name, for example "TTL" or "Consul.LockDelay".
	Field string
	// Rule is what the value must satisfy, for example "must be positive".
	Rule string
	// Value is the offending value, as text.
	Value string
}

// Error names the option, the rule it breaks and, when known, its value.
func (e *OptionError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("election: invalid option %s: %s", e.Field, e.Rule)
	}
	return fmt.Sprintf("election: invalid option %s: %s (got %s)", e.Field, e.Rule, e.Value)
}

// Unwrap makes errors.Is(err, ErrInvalidOptions) true.
func (e *OptionError) Unwrap() error { return ErrInvalidOptions }

// PanicError is the error a term ends with when its handler panicked. The
// panic is logged with its stack, and the term is given up as for any other
// handler error.
type PanicError struct {
	// Value is what the handler panicked with.
	Value any
	// Stack is the goroutine's stack at the panic.
	Stack []byte
}

// Error returns the panic value, as text.
func (e *PanicError) Error() string { return fmt.Sprintf("election: handler panicked: %v", e.Value) }

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
