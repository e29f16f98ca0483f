package backends

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"

	"github.com/consul-leader/consul-leader/election"
)

// ErrClosed is wrapped by the error of an Opener's Open and Session after
// its Close.
var ErrClosed = errors.New("backends: the Opener is closed")

// shared is a backend of an Opener, shared by its electors of one store. It
// is created once: the first Open of the store creates it, and those that
// come meanwhile wait for it.
type shared struct {
	ready chan struct{} // closed once b or err is set
	b     election.Backend
	err   error
}

// storeKey is the identity of u's store for sharing: the scheme and host in
// lower case, the user information, the path without its final slash and
// the store's own parameters, sorted. u carries no election parameter any
// more. Two URLs of one key open identical backends.
func storeKey(u *url.URL) string {
	k := url.URL{
		Scheme:   strings.ToLower(u.Scheme),
		User:     u.User,
		Host:     strings.ToLower(u.Host),
		Path:     strings.TrimSuffix(u.Path, "/"),
		RawQuery: u.Query().Encode(),
	}
	return k.String()
}

// sharedBackend returns the backend of key, calling open to create it when
// the Opener has none yet. A backend that closes is recorded for Close, and
// returned behind a wrapper that hides its Close from the electors. Those
// that wait for a creation that failed share its error, unless the error is
// the creator's context's: they then try themselves.
func (o *Opener) sharedBackend(ctx context.Context, key string, open func() (election.Backend, error)) (election.Backend, error) {
	o.mu.Lock()
	for {
		if o.closed {
			o.mu.Unlock()
			return nil, ErrClosed
		}
		if o.backends == nil {
			o.backends = map[string]*shared{}
		}
		e := o.backends[key]
		if e == nil {
			break
		}
		o.mu.Unlock()
		select {
		case <-e.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e.err == nil || !(errors.Is(e.err, context.Canceled) || errors.Is(e.err, context.DeadlineExceeded)) {
			return e.b, e.err
		}
		o.mu.Lock()
	}
	e := &shared{ready: make(chan struct{})}
	o.backends[key] = e
	o.mu.Unlock()

	b, err := open()
	o.mu.Lock()
	switch {
	case err != nil:
		delete(o.backends, key) // a later Open tries again
	case o.closed:
		delete(o.backends, key)
		closeBackend(b)
		b, err = nil, ErrClosed
	default:
		o.created++
		if _, ok := b.(io.Closer); ok {
			o.owned = append(o.owned, b)
			b = hideClose(b)
		}
	}
	e.b, e.err = b, err
	close(e.ready)
	o.mu.Unlock()
	return b, err
}

// Close closes the shared sessions of the Opener (see Session), then the
// backends it created for its electors, with their clients, and makes
// later calls of Open and Session fail with ErrClosed. Close the electors
// first: one still open loses its store. An Opener whose electors each own
// their backend (the package-level Open) has nothing to close. Close
// returns the errors of the sessions and backends, joined; a later call
// returns nil.
func (o *Opener) Close(ctx context.Context) error {
	o.mu.Lock()
	o.closed = true
	sessions := make([]*election.SharedSession, 0, len(o.sessions))
	for _, s := range o.sessions {
		sessions = append(sessions, s)
	}
	owned := o.owned
	o.sessions, o.owned, o.backends = nil, nil, nil
	o.mu.Unlock()
	var errs []error
	for _, s := range sessions {
		if err := s.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for _, b := range slices.Backward(owned) {
		if err := b.(io.Closer).Close(); err != nil {
			errs = append(errs, fmt.Errorf("backends: close %s: %w", b.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// hideClose returns b without its Close method, for electors that share
// it: election.New's elector closes a backend that is an io.Closer when
// the elector closes (unless it is on a SharedSession), which would take
// the client away from every other elector of the store. The optional
// interfaces the engine and Migration look for are kept.
func hideClose(b election.Backend) election.Backend {
	v, _ := b.(election.OptionsValidator)
	h := closeHidden{Backend: b, v: v}
	s, isS := b.(election.SessionSharer)
	f, isF := b.(election.TermFloorRaiser)
	switch {
	case isS && isF:
		return &hiddenSF{h, s, f}
	case isS:
		return &hiddenS{h, s}
	case isF:
		return &hiddenF{h, f}
	}
	return &h
}

// closeHidden is a backend without Close; it validates options as the
// backend does.
type closeHidden struct {
	election.Backend
	v election.OptionsValidator
}

// ValidateOptions validates o as the backend does, if it does.
func (c *closeHidden) ValidateOptions(o election.Options) error {
	if c.v == nil {
		return nil
	}
	return c.v.ValidateOptions(o)
}

type hiddenS struct {
	closeHidden
	election.SessionSharer
}

type hiddenF struct {
	closeHidden
	election.TermFloorRaiser
}

type hiddenSF struct {
	closeHidden
	election.SessionSharer
	election.TermFloorRaiser
}
