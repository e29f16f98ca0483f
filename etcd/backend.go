package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/election"
)

// BackendName is the backend's name in election.SessionInfo.Backend and in logs.
const BackendName = "etcd"

// Backend is the etcd implementation of election.Backend. It is safe for
// concurrent use and may serve any number of resources and electors. Its
// owner closes it once its electors are closed: electors made by
// election.New leave it open; New and OpenURL make one that their elector
// owns and closes.
type Backend struct {
	client   *clientv3.Client
	owned    bool   // Close closes client
	resource string // the resource Prefix applies to
	prefix   string // Options.Prefix; empty for DefaultPrefix
	log      *slog.Logger
	timeout  time.Duration // bounds the hubs' own requests
	retry    time.Duration // how long a failed hub waits
	page     int           // keys per read of a group's load
	alone    bool          // the backend of one elector: no group

	keepAlive *keepAlive // the one stream renewing every lease

	mu   sync.Mutex
	hubs map[string]*hub // per resource
	// hubBlock is what is left of the last block of hubs allocated: hubs
	// are allocated hubBlock at a time. A hub lives as long as the
	// backend, and is made as its resource is first claimed or read, as
	// often among the garbage of many acquisitions at once: a hub of its
	// own, of a size that garbage shares, would keep a span in use for
	// each few hubs.
	hubBlock []hub
	group    *rootWatch // the group watching the hubs under DefaultPrefixRoot
}

var (
	_ election.Backend          = (*Backend)(nil)
	_ election.OptionsValidator = (*Backend)(nil)
)

// NewBackend returns a backend on client, for use with election.New. It does
// not close client. A nil client is refused with an *election.OptionError
// naming client. Of opts it uses Prefix, which then applies to
// opts.Resource only (the backend serves other resources under their
// DefaultPrefix), Logger, and RequestTimeout and RetryInterval for the
// requests of its background watches; it checks the TTL of each session it
// creates.
func NewBackend(client *clientv3.Client, opts Options) (*Backend, error) {
	if client == nil {
		return nil, &election.OptionError{Field: "client", Rule: "must not be nil"}
	}
	if err := validatePrefix(opts.Prefix); err != nil {
		return nil, err
	}
	if opts.Prefix != "" {
		if err := election.ValidateResource(opts.Resource); err != nil {
			return nil, err
		}
	}
	d := opts.WithDefaults()
	if d.RequestTimeout < 0 {
		return nil, &election.OptionError{Field: "RequestTimeout", Rule: "must not be negative", Value: d.RequestTimeout.String()}
	}
	if d.RetryInterval < 0 {
		return nil, &election.OptionError{Field: "RetryInterval", Rule: "must not be negative", Value: d.RetryInterval.String()}
	}
	b := &Backend{
		client:   client,
		resource: opts.Resource,
		prefix:   opts.Prefix,
		log:      d.Logger.With("backend", BackendName),
		timeout:  d.RequestTimeout,
		retry:    max(d.RetryInterval, 10*time.Millisecond),
		page:     defaultPage,
		hubs:     map[string]*hub{},

		keepAlive: newKeepAlive(client),
	}
	b.group = newRootWatch(b)
	return b, nil
}

// Name returns "etcd".
func (b *Backend) Name() string { return BackendName }

// ValidateOptions checks what etcd bounds further than election.Options: a
// TTL of whole seconds, at least MinTTL. election.New calls it.
func (b *Backend) ValidateOptions(o election.Options) error { return validateTTL(o.TTL) }

// Close stops the backend's background watches and its lease keepalive
// stream, failing the renewals in flight, and closes the etcd client
// if the backend created it (OpenURL); a client passed to NewBackend stays
// open. A backend on such a client may be used again after Close.
func (b *Backend) Close() error {
	b.mu.Lock()
	hubs := make([]*hub, 0, len(b.hubs))
	for _, h := range b.hubs {
		hubs = append(hubs, h)
		if h.line.On() {
			h.wakeLocked() // and stop the turn's timer
		}
	}
	b.mu.Unlock()
	b.group.halt()
	for _, h := range hubs {
		h.halt()
	}
	b.keepAlive.close()
	if !b.owned {
		return nil
	}
	if err := b.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("etcd: close client: %w", err)
	}
	return nil
}

// Prefix returns the key prefix of resource's election.
func (b *Backend) Prefix(resource string) (string, error) {
	if err := election.ValidateResource(resource); err != nil {
		return "", err
	}
	if b.prefix == "" {
		return DefaultPrefix(resource), nil
	}
	if resource != b.resource {
		return "", fmt.Errorf("%w: this etcd backend has Prefix %q for resource %q, not for %q",
			election.ErrInvalidOptions, b.prefix, b.resource, resource)
	}
	return b.prefix, nil
}

// firstKey is the read of an election's leader: the key with the lowest
// create revision under the prefix, as concurrency.Election.Leader reads it.
func firstKey(prefix string) clientv3.Op {
	return clientv3.OpGet(prefix+"/", clientv3.WithFirstCreate()...)
}

// read reads the leadership of resource, linearizably: the first key and
// the term offset, in one transaction.
func (b *Backend) read(ctx context.Context, resource, prefix string) (state, error) {
	sent := time.Now()
	resp, err := b.client.Txn(ctx).Then(firstKey(prefix), clientv3.OpGet(offsetKey(prefix))).Commit()
	if err != nil {
		return state{}, storeError("read leader of "+prefix, err)
	}
	st, err := stateFrom(prefix, resp)
	if err != nil {
		return state{}, err
	}
	return b.remember(resource, prefix, st, sent), nil
}

// stateFrom builds the state from a transaction whose last two responses
// are the reads of the first key and of the term offset.
func stateFrom(prefix string, resp *clientv3.TxnResponse) (state, error) {
	n := len(resp.Responses)
	off, err := parseOffset(first(resp.Responses[n-1].GetResponseRange().GetKvs()))
	if err != nil {
		return state{}, err
	}
	var lead *cand
	if kv := first(resp.Responses[n-2].GetResponseRange().GetKvs()); kv != nil {
		c := candOf(prefix, kv)
		lead = &c
	}
	return stateOf(lead, off, resp.Header.Revision), nil
}
