package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/tlsparam"
	"github.com/consul-leader/consul-leader/internal/urlparam"
)

// URL parameters of this backend. Every other query parameter is go-redis's
// own (dial_timeout, pool_size, db, skip_verify, addr, master_name, ...).
const (
	// ParamKeyPrefix sets BackendOptions.KeyPrefix.
	ParamKeyPrefix = "keyPrefix"
	// ParamMode selects the kind of deployment: "single" (the default), "cluster"
	// or "sentinel".
	ParamMode = "mode"
)

// Deployment kinds for ParamMode.
const (
	// ModeSingle is one server, the default.
	ModeSingle = "single"
	// ModeCluster is Redis Cluster: the URL names a seed node.
	ModeCluster = "cluster"
	// ModeSentinel is a primary that Sentinel manages: the URL names a
	// sentinel.
	ModeSentinel = "sentinel"
)

// OpenURL returns an elector for a redis:// or rediss:// URL, with the
// election options opts (whose Resource is required). The elector owns the
// go-redis client it creates and closes it in Close. OpenURL does not
// connect: an unreachable or refusing server is reported to the handler as
// Leadership.Err, and retried.
//
// The URL is parsed by go-redis: user and password, host and port, the
// database number as path, rediss for TLS, and go-redis's query parameters
// (dial_timeout, read_timeout, pool_size, skip_verify, ...). go-redis's
// durations take a Go duration such as 1500ms or a whole number of
// seconds. These parameters are this backend's own and are removed before
// go-redis sees the URL:
//
//   - keyPrefix: BackendOptions.KeyPrefix (default "election").
//   - caFile, certFile, keyFile, tlsServerName (rediss only), as on consuls
//     and etcds URLs: the PEM file of the authorities that sign the
//     servers' certificates (default: the system's roots), the PEM files of
//     a client certificate and its key, and the name to verify in the
//     servers' certificates (default: the URL's host).
//   - mode: "single" (default) for one server, parsed with
//     goredis.ParseURL; "cluster" for Redis Cluster, parsed with
//     goredis.ParseClusterURL (more seed nodes as addr=host:port);
//     "sentinel" for a Sentinel-managed primary, parsed with
//     goredis.ParseFailoverURL (the URL names a sentinel, master_name=NAME
//     is required, more sentinels as addr=host:port).
//
// For example:
//
//	redis://elector:secret@10.0.0.5:6379/0?keyPrefix=myapp&dial_timeout=2s
//	rediss://redis.internal:26379?mode=sentinel&master_name=main
//
// The client always has ContextTimeoutEnabled set, so that every request
// ends by the deadline the elector gives it. The common election
// parameters (resource, id, value, ttl, renewInterval, retryInterval,
// waitTime, requestTimeout) override opts, as in backends.Open. Unknown
// parameters, and a bad value of a known one, fail with an error wrapping
// election.ErrInvalidOptions. OpenURL opens a Redis URL without linking the
// other stores.
func OpenURL(ctx context.Context, u *url.URL, opts election.Options) (*election.Elector, error) {
	opts, u, err := urlparam.WithCommon(u, opts)
	if err != nil {
		return nil, err
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	b, err := OpenBackend(ctx, u, opts)
	if err != nil {
		return nil, err
	}
	el, err := election.NewOwning(b, opts)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	return el, nil
}

// OpenBackend returns a Backend for a redis:// or rediss:// URL, as OpenURL
// describes, that owns its go-redis client: Backend.Close closes it. It
// takes the arguments of consul.OpenBackend and etcd.OpenBackend; of opts
// it uses Logger alone, for the backend's logs (default:
// election.DefaultLogger()), as the election options are checked by
// election.New for each elector.
func OpenBackend(ctx context.Context, u *url.URL, opts election.Options) (*Backend, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("redis: open: %w", err)
	}
	if u == nil {
		return nil, fmt.Errorf("%w: redis: URL is nil", election.ErrInvalidOptions)
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("%w: redis: URL %s: scheme must be redis or rediss", election.ErrInvalidOptions, u.Redacted())
	}
	q := u.Query()
	bo := BackendOptions{Logger: opts.Logger}
	mode := ModeSingle
	for name, dst := range map[string]*string{ParamKeyPrefix: &bo.KeyPrefix, ParamMode: &mode} {
		vs, ok := q[name]
		if !ok {
			continue
		}
		if len(vs) != 1 {
			return nil, fmt.Errorf("%w: redis: URL %s: parameter %s given %d times", election.ErrInvalidOptions, u.Redacted(), name, len(vs))
		}
		*dst = vs[0]
		q.Del(name)
	}
	if err := bo.Validate(); err != nil {
		return nil, err
	}
	if err := checkDurations(q); err != nil {
		return nil, err
	}
	tp, err := tlsparam.Take(q, nil)
	if err != nil {
		return nil, err
	}
	var tc *tls.Config
	if u.Scheme == "rediss" {
		if tc, err = tp.Config(); err != nil {
			return nil, err
		}
	} else if name := tp.Any(); name != "" {
		return nil, &election.OptionError{Field: "URL parameter " + name, Rule: "needs the rediss scheme"}
	}
	rest := *u
	rest.RawQuery = q.Encode()
	client, err := newURLClient(mode, rest.String(), tc)
	if err != nil {
		return nil, fmt.Errorf("%w: redis: URL %s: %w (this backend's own parameters are %s, %s, %s)",
			election.ErrInvalidOptions, u.Redacted(), redact(err, u), ParamKeyPrefix, ParamMode, strings.Join(tlsparam.Names, ", "))
	}
	b, err := NewBackend(client, bo)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	b.closes = true
	return b, nil
}

// goredisDurations are the go-redis URL parameters that are durations:
// a Go duration, or a whole number of seconds that go-redis multiplies
// without checking for overflow.
var goredisDurations = []string{
	"dial_timeout", "read_timeout", "write_timeout", "pool_timeout",
	"min_retry_backoff", "max_retry_backoff", "conn_max_idle_time", "idle_timeout",
	"conn_max_lifetime", "max_conn_age", "conn_max_lifetime_jitter",
}

// checkDurations refuses a go-redis duration parameter that does not fit a
// time.Duration, which go-redis would turn into a wrong one. Values that
// are not durations at all are left to go-redis, which names them.
func checkDurations(q url.Values) error {
	for _, name := range goredisDurations {
		for _, v := range q[name] {
			if err := urlparam.CheckSeconds(name, v); err != nil {
				return err
			}
		}
	}
	return nil
}

// newURLClient parses raw with go-redis's parser for mode and creates the
// client, with context deadlines honoured and, for a rediss URL, what the
// TLS parameters set in tc.
func newURLClient(mode, raw string, tc *tls.Config) (goredis.UniversalClient, error) {
	switch mode {
	case ModeSingle:
		o, err := goredis.ParseURL(raw)
		if err != nil {
			return nil, err
		}
		applyTLS(o.TLSConfig, tc)
		o.ContextTimeoutEnabled = true
		return goredis.NewClient(o), nil
	case ModeCluster:
		o, err := goredis.ParseClusterURL(raw)
		if err != nil {
			return nil, err
		}
		applyTLS(o.TLSConfig, tc)
		o.ContextTimeoutEnabled = true
		return goredis.NewClusterClient(o), nil
	case ModeSentinel:
		o, err := goredis.ParseFailoverURL(raw)
		if err != nil {
			return nil, err
		}
		if o.MasterName == "" {
			return nil, errors.New("mode=sentinel needs the parameter master_name")
		}
		applyTLS(o.TLSConfig, tc)
		o.ContextTimeoutEnabled = true
		return goredis.NewFailoverClient(o), nil
	}
	return nil, fmt.Errorf("parameter %s=%q: must be %s, %s or %s", ParamMode, mode, ModeSingle, ModeCluster, ModeSentinel)
}

// applyTLS sets on dst, the TLS configuration go-redis parsed from a
// rediss URL, what the TLS parameters set in tc; it does nothing without
// either.
func applyTLS(dst, tc *tls.Config) {
	if dst != nil && tc != nil {
		tlsparam.Apply(dst, tc)
	}
}

// redact keeps the URL's password out of a parse error, which may quote the
// URL.
func redact(err error, u *url.URL) error {
	if u.User == nil {
		return err
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}
