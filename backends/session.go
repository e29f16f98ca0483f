package backends

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// SessionParam is the URL parameter that puts an elector on the Opener's
// shared session of its store: session=shared.
const SessionParam = "session"

// MemorySessionConn names the connection of a memory store's shared
// session, to inject faults into it (Opener.MemoryStore(NAME).Cut).
const MemorySessionConn = "shared-session"

// ErrOtherSession is wrapped by the error of Open for options whose Session
// is not the Opener's session of the URL's store.
var ErrOtherSession = errors.New("backends: the session is not this Opener's session of the store")

// Session returns the Opener's shared session of the store rawURL names
// (see election.SharedSession): one store session, renewed once for every
// elector on it. There is one per store and Opener: the first call creates
// it, later calls return it, and Opener.Close closes it. Electors join it
// when opened with the URL parameter session=shared, or with
// election.Options.Session set to it; an elector of another store is
// refused with an error wrapping ErrOtherSession.
//
// The election parameters of rawURL are ignored but for ttl,
// renewInterval, retryInterval and requestTimeout, which set the options'
// fields left zero (with consul's checkTTL, the TTL defaults to it, as for
// an elector). A later call with non-zero options that differ from the
// session's, defaults applied, fails with an error wrapping
// election.ErrInvalidOptions. The backend must implement
// election.SessionSharer. With session=shared alone, the first elector
// opened creates the session with its own durations.
//
// consul's key and etcd's prefix parameters, which name the key of one
// resource, are refused: the electors of a session share one backend. On
// memory://NAME the session connects as MemorySessionConn.
func (o *Opener) Session(ctx context.Context, rawURL string, so election.SessionOptions) (*election.SharedSession, error) {
	if o.private {
		return nil, fmt.Errorf("%w: a shared session belongs to an Opener", election.ErrInvalidOptions)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
	}
	opts, rest, err := ParseOptions(u.Query(), election.Options{})
	if err != nil {
		return nil, err
	}
	if _, err := takeSession(rest); err != nil {
		return nil, err
	}
	u.RawQuery = rest.Encode()
	opts = urlDefaults(u, opts)
	want := so
	so = fillSession(so, opts)
	if err := so.Validate(); err != nil {
		return nil, err
	}
	opts = election.Options{ID: MemorySessionConn, TTL: so.WithDefaults().TTL, Logger: so.Logger}
	b, key, err := o.resolve(ctx, u, opts, true)
	if err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, ErrClosed
	}
	if s := o.sessions[key]; s != nil {
		if !isZeroSession(want) && !sameSessionOptions(so.WithDefaults(), s.Options()) {
			return nil, fmt.Errorf("%w: the Opener has a session of %s already, with other options (%+v)", election.ErrInvalidOptions, u.Redacted(), sessionDurations(s.Options()))
		}
		return s, nil
	}
	return o.newSessionLocked(key, b, so)
}

// sessionOf returns the backend and the shared session of u's store for an
// elector of opts: opts.Session, which must be the Opener's session of the
// store, or else the store's session, created with opts' durations if
// needed.
func (o *Opener) sessionOf(ctx context.Context, u *url.URL, opts election.Options) (election.Backend, *election.SharedSession, error) {
	if opts.Session != nil && !o.hasSession(opts.Session) {
		return nil, nil, fmt.Errorf("%w: election.Options.Session was not made by this Opener's Session", ErrOtherSession)
	}
	b, key, err := o.resolve(ctx, u, opts, true)
	if err != nil {
		return nil, nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, nil, ErrClosed
	}
	s := o.sessions[key]
	if opts.Session != nil {
		if s != opts.Session {
			return nil, nil, fmt.Errorf("%w: election.Options.Session is the session of another store than %s", ErrOtherSession, u.Redacted())
		}
		return b, s, nil
	}
	if s != nil {
		return b, s, nil
	}
	s, err = o.newSessionLocked(key, b, fillSession(election.SessionOptions{Logger: opts.Logger}, opts))
	return b, s, err
}

func (o *Opener) hasSession(s *election.SharedSession) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, x := range o.sessions {
		if x == s {
			return true
		}
	}
	return false
}

func (o *Opener) newSessionLocked(key string, b election.Backend, so election.SessionOptions) (*election.SharedSession, error) {
	s, err := election.NewSharedSession(b, so)
	if err != nil {
		return nil, err
	}
	if o.sessions == nil {
		o.sessions = map[string]*election.SharedSession{}
	}
	o.sessions[key] = s
	return s, nil
}

// fillSession returns so with its zero durations taken from opts.
func fillSession(so election.SessionOptions, opts election.Options) election.SessionOptions {
	for _, f := range []struct{ dst, src *time.Duration }{
		{&so.TTL, &opts.TTL}, {&so.RenewInterval, &opts.RenewInterval},
		{&so.RetryInterval, &opts.RetryInterval}, {&so.RequestTimeout, &opts.RequestTimeout},
	} {
		if *f.dst == 0 {
			*f.dst = *f.src
		}
	}
	return so
}

// sessionDurations is so without its logger and observers, to compare and
// print.
func sessionDurations(so election.SessionOptions) election.SessionOptions {
	so.Logger = nil
	so.Observers = nil
	return so
}

// sameSessionOptions reports whether a and b have the same settings, other
// than their loggers and observers.
func sameSessionOptions(a, b election.SessionOptions) bool {
	return reflect.DeepEqual(sessionDurations(a), sessionDurations(b))
}

// isZeroSession reports whether so sets nothing.
func isZeroSession(so election.SessionOptions) bool {
	return so.Logger == nil && len(so.Observers) == 0 && sameSessionOptions(so, election.SessionOptions{})
}

// takeSession removes the parameter session from q, and reports whether it
// asks for the shared session.
func takeSession(q url.Values) (bool, error) {
	v, ok := q[SessionParam]
	if !ok {
		return false, nil
	}
	delete(q, SessionParam)
	if len(v) != 1 || v[0] != "shared" {
		return false, fmt.Errorf("%w: the parameter session takes one value, shared (session=shared), got %q", ErrBadURL, v)
	}
	return true, nil
}

// withoutSession returns opts without their shared session, to validate
// them before the session is known.
func withoutSession(opts election.Options) election.Options {
	opts.Session = nil
	return opts
}
