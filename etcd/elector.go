package etcd

import (
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/election"
)

// New returns an elector for opts.Resource on client. The client stays the
// caller's: closing the elector does not close it. New fails with an
// *election.OptionError if opts are invalid, or naming client if client is
// nil (etcd has no environment to make one from; OpenURL makes one from a
// URL).
//
// With opts.Session set, the elector campaigns on that shared session's
// backend, which must be an etcd Backend: its client, Prefix,
// RequestTimeout, RetryInterval and Logger apply; client must be nil or
// that backend's client, and opts.Prefix empty or the prefix that backend
// gives opts.Resource. A session of another backend is refused with an
// *election.OptionError naming the Session field, another client with one
// naming client.
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
	return election.NewOwning(b, opts.Options)
}

// sessionBackend returns the backend of opts.Session, checking that it can
// serve an elector of opts on client.
func sessionBackend(client *clientv3.Client, opts Options) (*Backend, error) {
	sb := opts.Session.Backend()
	b, ok := sb.(*Backend)
	switch {
	case !ok:
		return nil, &election.OptionError{Field: "Session", Rule: "must be a shared session of an etcd backend", Value: sb.Name()}
	case client != nil && b.client != client:
		return nil, &election.OptionError{Field: "client", Rule: "must be nil or the client of the Session's backend", Value: "another client"}
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
