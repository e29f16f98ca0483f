package etcd

import (
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/election"
)

// New returns an elector for opts.Resource on client. The client stays the
// caller's: closing the elector does not close it. New fails with an
// *election.OptionError if opts are invalid.
func New(client *clientv3.Client, opts Options) (*election.Elector, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	b, err := NewBackend(client, opts)
	if err != nil {
		return nil, err
	}
	return election.New(b, opts.Options)
}
