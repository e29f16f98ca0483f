package backends

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/etcd"
	"github.com/consul-leader/consul-leader/redis"
)

// scheme returns the backend that opens URLs of scheme s.
func scheme(s string) (openFunc, bool) {
	switch s {
	case "memory":
		return openMemory, true
	case "consul", "consuls":
		return openConsul, true
	case "etcd", "etcds":
		return openEtcd, true
	case "redis", "rediss":
		return openRedis, true
	}
	return nil, false
}

// perElector returns what, beyond the store, makes the backend of u's
// elector its own, or "" when every elector of the store may share one: a
// memory:// connection is named by the elector's ID (faults are injected
// per connection), and consul's key and etcd's prefix parameters name the
// key of one resource, so an elector of another resource must not use that
// backend. param names the parameter responsible, for errors.
func perElector(u *url.URL, opts election.Options) (key, param string) {
	q := u.Query()
	switch strings.ToLower(u.Scheme) {
	case "memory":
		return "id=" + opts.ID, "id"
	case consul.Scheme, consul.SchemeTLS:
		if q.Has("key") {
			return "resource=" + opts.Resource, "key"
		}
	case "etcd", "etcds":
		if q.Has("prefix") {
			return "resource=" + opts.Resource, "prefix"
		}
	}
	return "", ""
}

// urlDefaults returns opts with the defaults that u's own parameters imply
// (consul://...?checkTTL=D sets the TTL to D when it is unset), so that an
// elector opened here has the options it would have from the backend's own
// OpenURL.
func urlDefaults(u *url.URL, opts election.Options) election.Options {
	if s := strings.ToLower(u.Scheme); s == consul.Scheme || s == consul.SchemeTLS {
		return consul.URLDefaults(u, opts)
	}
	return opts
}

func openRedis(ctx context.Context, _ *Opener, u *url.URL, opts election.Options) (election.Backend, error) {
	b, err := redis.OpenBackend(ctx, u, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	return b, nil
}

func openConsul(ctx context.Context, _ *Opener, u *url.URL, opts election.Options) (election.Backend, error) {
	b, err := consul.OpenBackend(ctx, u, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	return b, nil
}

func openEtcd(ctx context.Context, _ *Opener, u *url.URL, opts election.Options) (election.Backend, error) {
	b, err := etcd.OpenBackend(ctx, u, opts)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadURL, err)
	}
	return b, nil
}
