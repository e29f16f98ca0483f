package election

import (
	"context"
	"fmt"
	"time"
)

// Elector campaigns for the leadership of one resource on behalf of one
// candidate. Every backend's constructor returns one, built by New; they all
// share the engine of this package, and so its semantics. Its methods are
// safe for concurrent use.
//
// An Elector is made by New or a backend's constructor only: the zero
// Elector does nothing, and its methods fail with ErrInvalidOptions.
type Elector struct {
	e *engine
}

// New returns an elector for opts on backend b. It fails with an
// *OptionError if opts are invalid. The elector does not close b, which may
// serve any number of electors and belongs to whoever made it: close it
// once its electors are closed.
func New(b Backend, opts Options) (*Elector, error) {
	return newElector(b, opts, false)
}

// NewOwning returns an elector for opts on backend b, as New does, that
// owns b: its Close closes b (if b implements io.Closer) once the campaign
// has ended. It is for a backend made for this one elector, as the backend
// packages' constructors make. An elector on a shared session cannot own
// the session's backend: NewOwning fails then, naming Session.
func NewOwning(b Backend, opts Options) (*Elector, error) {
	if opts.Session != nil {
		return nil, &OptionError{Field: "Session", Rule: "must be nil for NewOwning: the backend of a shared session belongs to the session's owner; use New"}
	}
	return newElector(b, opts, true)
}

func newElector(b Backend, opts Options, owns bool) (*Elector, error) {
	if nilBackend(b) {
		return nil, errNilBackend()
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
	if opts.Session != nil {
		if err := opts.Session.register(b, opts.Resource); err != nil {
			return nil, err
		}
	}
	e := newEngine(b, opts)
	e.ownsBackend = owns
	return &Elector{e: e}, nil
}

// engine returns el's engine, or an error for an Elector not made by New.
func (el *Elector) engine() (*engine, error) {
	if el == nil || el.e == nil {
		return nil, fmt.Errorf("%w: the Elector was not made by New or a backend's constructor", ErrInvalidOptions)
	}
	return el.e, nil
}

// Start campaigns in the background and returns at once. It fails only for
// a second call, also after Run (ErrAlreadyStarted), after Close (ErrClosed)
// or for a nil handler (ErrInvalidOptions). handler is called for every
// change of leadership this elector observes (see Handler). Cancelling ctx
// stops the campaign as Close does, without waiting for it. Run is Start
// and Close in one blocking call.
func (el *Elector) Start(ctx context.Context, handler Handler) error {
	e, err := el.engine()
	if err != nil {
		return err
	}
	return e.Start(ctx, handler)
}

// Release gives leadership up now, so that a waiting candidate takes over
// without waiting for the TTL. The elector stays a candidate but campaigns
// again only after RetryInterval, leaving others the chance. If the leader's
// handler is still running, Release ends its context and returns; the store
// is released as soon as the handler returns. Otherwise Release returns once
// the store has released, or with ctx's error. It does nothing when this
// elector does not lead.
func (el *Elector) Release(ctx context.Context) error {
	e, err := el.engine()
	if err != nil {
		return err
	}
	return e.Release(ctx)
}

// Leader reads who leads now from the store. It works on any elector,
// started or not; IsLeader is true only for this elector's own term. It
// costs a store request: to know whether this elector leads, without one,
// use IsLeader; for what the handler was last told, State.
func (el *Elector) Leader(ctx context.Context) (Leadership, error) {
	e, err := el.engine()
	if err != nil {
		return Leadership{}, err
	}
	return e.Leader(ctx)
}

// WatchLeader reads who leads from the store, as Leader does, after
// waiting for a change. With after == 0 it reads at once. Otherwise after
// is a revision an earlier call returned, and it waits until the
// resource's record differs from that revision's, or until wait has passed (zero selects
// Options.WaitTime), or until ctx ends, and returns who leads then: the same
// leadership when nothing visible changed (a store may also return early),
// so compare LeaderID and Term to tell a change. It returns the revision of
// the record read, to pass as after to the next call, and costs one
// blocking read of the store, bounded by wait + Options.RequestTimeout (a
// read at once by RequestTimeout). A blocking read may end its wait on what
// the store's client last heard, without a round trip (etcd's and Consul's
// do), and so return no error while the connection is silent: to make sure
// that the store still answers, read at once (after == 0) when a wait
// ended with nothing new. Call it in a loop to follow the leadership
// without campaigning:
//
//	var rev uint64
//	for {
//		l, r, err := el.WatchLeader(ctx, rev, 0)
//		if err != nil {
//			rev = 0 // read at once after a pause
//			...
//			continue
//		}
//		rev = r
//		...
//	}
//
// A wait that is negative or above MaxWaitTime is refused with an error
// wrapping ErrInvalidOptions.
func (el *Elector) WatchLeader(ctx context.Context, after uint64, wait time.Duration) (l Leadership, revision uint64, err error) {
	e, err := el.engine()
	if err != nil {
		return Leadership{}, 0, err
	}
	return e.WatchLeader(ctx, after, wait)
}

// Close stops the campaign: it ends the current term, waits for the handler
// to return, releases leadership (with a fresh, bounded context, so a
// cancelled ctx does not skip the release), closes the backend and returns
// once no goroutine of the elector is left, or with ctx's error. When ctx
// ends first (a handler ignoring its context), the elector still finishes
// on its own: the backend is closed as soon as the handler returns, without
// another Close. Every call, also a later or a concurrent one, waits the
// same way and returns nil (or the backend's Close error) once the elector
// is gone. Close must not be called from the handler, which it would wait
// for: it then fails at once with ErrCloseFromHandler and does nothing; use
// Release there.
func (el *Elector) Close(ctx context.Context) error {
	e, err := el.engine()
	if err != nil {
		return err
	}
	return e.Close(ctx)
}
