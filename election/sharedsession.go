package election

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"
)

// SessionOptions configure a SharedSession. The zero value of every field
// selects its documented default; the durations follow the rules of the
// Options fields of the same names.
type SessionOptions struct {
	// TTL is the lifetime of the store session: when this process dies,
	// every resource it leads is free about TTL after the last renewal.
	// Default: DefaultTTL (15 s).
	TTL time.Duration
	// RenewInterval is how often the store session is renewed, once for
	// every elector on it; the first renewal of each store session comes
	// at a random point in the second half of it, as Options.RenewInterval
	// describes. Default: TTL/3.
	RenewInterval time.Duration
	// RetryInterval is how long the session waits after a failed attempt
	// to create a store session; failures in a row back off as
	// Options.RetryInterval describes. Default: DefaultRetryInterval (1 s).
	RetryInterval time.Duration
	// RequestTimeout bounds each request of the session itself: creation,
	// renewal and close. Default: TTL/5, at most MaxRequestTimeout (10 s).
	RequestTimeout time.Duration
	// Name describes this process in the store's own listing (a Consul
	// session's name). Default: the backend's.
	Name string
	// Logger receives the session's logs. Default: DefaultLogger().
	Logger *slog.Logger
	// Observers receive the session's own events (see Observer): its
	// renewals, which serve every term on it, and the failures of its own
	// requests (creation, renewal, close), with Resource and ID empty.
	// The events of each term are its elector's (Options.Observers). None
	// may be nil. Default: none, at no cost.
	Observers []*Observer

	fixedRenewals bool // as Options.fixedRenewals
}

// options returns o as the Options that carry its durations, with defaults
// applied.
func (o SessionOptions) options() Options {
	return Options{
		Resource:       "session",
		ID:             "session",
		TTL:            o.TTL,
		RenewInterval:  o.RenewInterval,
		RetryInterval:  o.RetryInterval,
		RequestTimeout: o.RequestTimeout,
		Logger:         o.Logger,
		fixedRenewals:  o.fixedRenewals,
	}
}

// WithDefaults returns o with every zero field set to its default.
func (o SessionOptions) WithDefaults() SessionOptions {
	d := o.options().WithDefaults()
	o.TTL, o.RenewInterval, o.RetryInterval, o.RequestTimeout, o.Logger = d.TTL, d.RenewInterval, d.RetryInterval, d.RequestTimeout, d.Logger
	return o
}

// Validate reports the first invalid option, with defaults applied, as an
// *OptionError naming the field and the rule it breaks.
func (o SessionOptions) Validate() error {
	if err := o.options().Validate(); err != nil {
		return err
	}
	return validateObservers(o.Observers)
}

// SharedSession is one store session for the electors of many resources in
// one process: a Consul session holding many locks, an etcd lease holding
// many keys, a Redis session emulated by renewing all its keys in one
// script. It is renewed once per RenewInterval for all of them, and its
// step-down deadline (see StepDownMargin) ends every term on it together,
// before the store could end the session. When the store session is lost,
// every term on it ends, and the electors campaign again on a new one,
// which the SharedSession creates at once, backing off while the store
// fails.
//
// Electors join a session through Options.Session. The session sends no
// request until the first of them starts. Close ends it. Its methods are
// safe for concurrent use.
//
// A leader on a shared session of a backend whose shared watch watches its
// record (RecordWatcher: every backend of this module, for a Consul key only
// once its root is listed) keeps no goroutine of its own for its term but
// the one its handler's leader call runs on while the call lasts: a
// handler that returns from its leader calls at once (the term lasts until
// its context ends either way) leads thousands of resources at no
// goroutine each, and one that blocks for the term at one each.
type SharedSession struct {
	b      Backend
	sharer SessionSharer
	opts   SessionOptions // defaults applied
	log    *slog.Logger
	jitter *jitter       // also its electors' random source
	obs    *observing    // the session's Observers; nil when none
	gate   chan struct{} // a slot per acquisition in flight (see AcquireLimiter); nil: no bound

	mu        sync.Mutex
	closed    bool
	stop      context.CancelCauseFunc
	loopDone  chan struct{}       // closed when the loop returned; nil until the first use starts it
	leases    sync.WaitGroup      // leases created and not yet closed
	resources map[string]struct{} // the resources of its open electors
	cur       *leaseUse           // the live lease; nil when none
	failures  uint64              // lease creations failed so far
	lastErr   error               // the last one's error
	changed   chan struct{}       // closed and replaced at each change of the above
}

// leaseUse is a lease and its renewals, with the electors using it.
type leaseUse struct {
	lease   Lease
	ka      *keepalive
	users   int  // campaigns on the lease, under SharedSession.mu
	dead    bool // its renewals ended: no new campaign uses it
	closing bool // its Close has begun
}

// NewSharedSession returns a session on backend b, which must implement
// SessionSharer, as every backend of this module does. It fails with an
// *OptionError for invalid options. It sends no request: the store session
// is created when the first elector on it starts.
func NewSharedSession(b Backend, o SessionOptions) (*SharedSession, error) {
	if nilBackend(b) {
		return nil, errNilBackend()
	}
	sharer, ok := b.(SessionSharer)
	if !ok {
		return nil, &OptionError{Field: "backend", Rule: "must implement election.SessionSharer to share a session", Value: b.Name()}
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.WithDefaults()
	if v, ok := b.(OptionsValidator); ok {
		if err := v.ValidateOptions(o.options().WithDefaults()); err != nil {
			return nil, err
		}
	}
	j := newJitter()
	var gate chan struct{}
	if l, ok := b.(AcquireLimiter); ok && l.MaxAcquiring() > 0 {
		gate = make(chan struct{}, l.MaxAcquiring())
	}
	return &SharedSession{
		b:         b,
		gate:      gate,
		sharer:    sharer,
		opts:      o,
		log:       o.Logger.With("backend", b.Name(), "shared_session", true),
		jitter:    j,
		obs:       newObserving(o.Observers, "", "", b.Name()),
		resources: make(map[string]struct{}),
		changed:   make(chan struct{}),
	}, nil
}

// leaveAcquire ends the turn of an acquisition that campaign.awaitTurn
// waited for.
func (s *SharedSession) leaveAcquire() {
	if s.gate != nil {
		<-s.gate
	}
}

// Backend returns the backend the session was made on.
func (s *SharedSession) Backend() Backend { return s.b }

// Options returns the session's options, with defaults applied.
func (s *SharedSession) Options() SessionOptions { return s.opts }

// Info describes the current store session; it is the zero SessionInfo
// while there is none (before the first elector starts, between a lost
// session and the next, after Close).
func (s *SharedSession) Info() SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == nil || s.cur.dead {
		return SessionInfo{}
	}
	return s.cur.lease.Info()
}

// Close ends every term on the session (their contexts end with cause
// ErrSessionClosed), waits for their handlers to return, gives up every
// resource still held, and ends the store session. Its electors stop
// campaigning: their handlers are told ErrSessionClosed, and each must
// still be closed. Close returns once the store session was closed, or with
// ctx's error, the session then finishing on its own; a later call waits
// the same way. It does not close the backend, which belongs to its owner.
func (s *SharedSession) Close(ctx context.Context) error {
	s.mu.Lock()
	first := !s.closed
	if first {
		s.closed = true
		if s.loopDone != nil {
			s.stop(ErrSessionClosed)
		}
		s.broadcastLocked()
	}
	loopDone := s.loopDone
	s.mu.Unlock()
	if loopDone == nil {
		if first && s.obs != nil {
			s.obs.stopped()
		}
		return nil
	}
	done := make(chan struct{})
	go func() {
		<-loopDone
		s.leases.Wait()
		if first && s.obs != nil {
			s.obs.stopped()
		}
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("election: close shared session: %w (is a handler ignoring its context?)", ctx.Err())
	}
}

func (s *SharedSession) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// register reserves resource for an elector made on b.
func (s *SharedSession) register(b Backend, resource string) error {
	if !sameBackend(b, s.b) {
		return &OptionError{Field: "Session", Rule: fmt.Sprintf("must be a session of the elector's backend; it was made on another %s backend", s.b.Name()), Value: b.Name()}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, ErrSessionClosed)
	}
	if _, ok := s.resources[resource]; ok {
		return &OptionError{Field: "Resource", Rule: "must not have another open elector on the same session (close that one first)", Value: fmt.Sprintf("%q", resource)}
	}
	s.resources[resource] = struct{}{}
	return nil
}

// unregister frees resource for another elector, once its elector closed.
func (s *SharedSession) unregister(resource string) {
	s.mu.Lock()
	delete(s.resources, resource)
	s.mu.Unlock()
}

// use returns the live lease, once there is one, for a campaign, which
// calls done when it no longer uses it. It starts the session on its first
// call. It fails with ErrSessionClosed after Close, with ctx's error, or
// with the error of an attempt to create a lease that failed while it
// waited.
func (s *SharedSession) use(ctx context.Context) (*leaseUse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	failures := s.failures
	for {
		switch {
		case s.closed:
			return nil, ErrSessionClosed
		case s.loopDone == nil:
			s.startLocked()
		case s.cur != nil && !s.cur.dead:
			s.cur.users++
			return s.cur, nil
		case s.failures > failures:
			return nil, s.lastErr
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
		}
		s.mu.Lock()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
}

// done ends a campaign's use of u; the last one closes a dead lease.
func (s *SharedSession) done(u *leaseUse) {
	s.mu.Lock()
	u.users--
	closeNow := u.dead && u.users == 0 && !u.closing
	if closeNow {
		u.closing = true
	}
	s.mu.Unlock()
	if closeNow {
		s.closeLease(u)
	}
}

func (s *SharedSession) startLocked() {
	ctx, stop := context.WithCancelCause(context.Background())
	s.stop = stop
	s.loopDone = make(chan struct{})
	go s.loop(ctx)
}

func (s *SharedSession) broadcastLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// loop keeps a live lease until ctx ends, one lease after another.
func (s *SharedSession) loop(ctx context.Context) {
	defer close(s.loopDone)
	o := s.opts.options().WithDefaults()
	retry := backoff{opts: &o, rng: s.jitter}
	for ctx.Err() == nil {
		created := time.Now()
		rctx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
		l, err := s.sharer.NewLease(rctx, LeaseParams{TTL: o.TTL, Name: s.opts.Name})
		cancel()
		if s.obs != nil {
			s.obs.request(ctx, OpCreateSession, "", created, err)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			err = fmt.Errorf("election: create shared session: %w", err)
			s.log.Warn("could not create the shared session", "err", err)
			s.mu.Lock()
			s.failures++
			s.lastErr = err
			s.broadcastLocked()
			s.mu.Unlock()
			sleep(ctx, retry.failed())
			continue
		}
		s.leases.Add(1)
		u := &leaseUse{lease: l, ka: startKeepalive(ctx, o, s.log, l, created, s.jitter.firstRenewal(o), s.obs)}
		s.mu.Lock()
		s.cur = u
		s.broadcastLocked()
		s.mu.Unlock()
		s.log.Info("shared session created", "session", l.Info().ID)

		<-u.ka.ctx.Done()
		cause := context.Cause(u.ka.ctx)
		u.ka.stop()
		s.mu.Lock()
		u.dead = true
		s.cur = nil
		closeNow := u.users == 0
		u.closing = closeNow
		s.mu.Unlock()
		if closeNow {
			s.closeLease(u)
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("shared session ended; every term on it ended", "session", l.Info().ID, "cause", cause)
		if time.Since(created) < o.TTL {
			sleep(ctx, retry.failed()) // a store that keeps losing sessions
		} else {
			retry.reset()
		}
	}
}

// closeLease closes a lease no campaign uses any more, with a fresh,
// bounded context.
func (s *SharedSession) closeLease(u *leaseUse) {
	defer s.leases.Done()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.RequestTimeout)
	defer cancel()
	sent := time.Now()
	err := u.lease.Close(ctx)
	if s.obs != nil {
		s.obs.request(context.Background(), OpRelease, u.lease.Info().ID, sent, err)
	}
	if err != nil {
		s.log.Warn("could not close the shared session", "session", u.lease.Info().ID, "err", err)
	}
}

// sameBackend reports whether a and b are the same backend value; values
// that cannot be compared are not.
func sameBackend(a, b Backend) bool {
	ta, tb := reflect.TypeOf(a), reflect.TypeOf(b)
	if ta != tb || !ta.Comparable() {
		return false
	}
	return a == b
}
