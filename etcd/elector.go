package etcd

import (
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/election"
)

// New returns an elector for opts.Resource on client. The client stays the
// caller's: closing the elector does not close it. New fails with an
// *election.OptionError if opts are invalid.
//
// With opts.Session set, the elector campaigns on that shared session's
// backend, which must be an etcd Backend on client: its Prefix,
// RequestTimeout, RetryInterval and Logger apply, and opts.Prefix must be
// empty or the prefix that backend gives opts.Resource. A session of
// another backend is refused with an *election.OptionError naming the
// Session field.
func New(client *clientv3.Client, opts Options) (*election.Elector, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Session != nil {
		b, err := sessionBackend(client, opts)
		if err != nil {
			return nil, err
		}
		return election.New(b, opts.Options)
	}
	b, err := NewBackend(client, opts)
	if err != nil {
		return nil, err
	}
	b.alone = true
	return election.New(b, opts.Options)
}

// sessionBackend returns the backend of opts.Session, checking that it can
// serve an elector of opts on client.
func sessionBackend(client *clientv3.Client, opts Options) (*Backend, error) {
	sb := opts.Session.Backend()
	b, ok := sb.(*Backend)
	switch {
	case !ok:
		return nil, &election.OptionError{Field: "Session", Rule: "must be a shared session of an etcd backend", Value: sb.Name()}
	case client == nil:
		return nil, fmt.Errorf("%w: etcd client is nil", election.ErrInvalidOptions)
	case b.client != client:
		return nil, &election.OptionError{Field: "Session", Rule: "must be a shared session of an etcd backend on the same client", Value: "a backend on another client"}
	}
	if opts.Prefix != "" {
		prefix, err := b.Prefix(opts.Resource)
		if err != nil {
			return nil, err
		}
		if prefix != opts.Prefix {
			return nil, &election.OptionError{Field: "Prefix", Rule: fmt.Sprintf("must be empty or %q, the prefix of the shared session's backend for this resource", prefix), Value: fmt.Sprintf("%q", opts.Prefix)}
		}
	}
	return b, nil
}
