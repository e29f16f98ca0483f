package election

import (
	"context"
	"fmt"
)

// Elector campaigns for the leadership of one resource on behalf of one
// candidate. Every backend's constructor returns one; they all share the
// engine of this package, and so its semantics.
type Elector interface {
	// Start campaigns in the background and returns at once. It fails only
	// for a second call (ErrAlreadyStarted) or after Close (ErrClosed).
	// handler is called for every change of leadership this elector
	// observes (see Handler). Cancelling ctx stops the campaign as Close
	// does, without waiting for it.
	Start(ctx context.Context, handler Handler) error

	// Release gives leadership up now, so that a waiting candidate takes
	// over without waiting for the TTL. The elector stays a candidate but
	// campaigns again only after RetryInterval, leaving others the chance.
	// If the leader's handler is still running, Release ends its context
	// and returns; the store is released as soon as the handler returns.
	// Otherwise Release returns once the store has released, or with ctx's
	// error. It does nothing when this elector does not lead.
	Release(ctx context.Context) error

	// Leader reads who leads now from the store. It works on any elector,
	// started or not; IsLeader is true only for this elector's own term.
	Leader(ctx context.Context) (Leadership, error)

	// Close stops the campaign: it ends the current term, waits for the
	// handler to return, releases leadership (with a fresh, bounded context,
	// so a cancelled ctx does not skip the release), closes the backend and
	// returns once no goroutine of the elector is left, or with ctx's error.
	// When ctx ends first (a handler ignoring its context), the elector still
	// finishes on its own: the backend is closed as soon as the handler
	// returns, without another Close. Every call, also a later or a
	// concurrent one, waits the same way and returns nil (or the backend's
	// Close error) once the elector is gone. Close must not be called from
	// the handler, which it would wait for: it then fails at once with
	// ErrCloseFromHandler and does nothing; use Release there.
	Close(ctx context.Context) error
}

// New returns an elector for opts on backend b. It fails with an
// *OptionError if opts are invalid.
func New(b Backend, opts Options) (Elector, error) {
	if b == nil {
		return nil, fmt.Errorf("%w: backend is nil", ErrInvalidOptions)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.WithDefaults()
	if v, ok := b.(OptionsValidator); ok {
		if err := v.ValidateOptions(opts); err != nil {
			return nil, err
		}
	}
	return newEngine(b, opts), nil
}
