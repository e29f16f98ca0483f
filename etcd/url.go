package etcd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/tlsparam"
	"github.com/consul-leader/consul-leader/internal/urlparam"
)

// URL defaults.
const (
	// DefaultPort is the client port of an endpoint given without one.
	DefaultPort = 2379
	// DefaultDialTimeout bounds connecting and authenticating in OpenURL
	// when the URL has no dialTimeout, or ctx no earlier deadline.
	DefaultDialTimeout = 5 * time.Second
	// keepAliveTime and keepAliveTimeout make a client created by OpenURL
	// notice a dead connection and move to another endpoint. etcd refuses
	// client pings more often than every 5 s.
	keepAliveTime    = 10 * time.Second
	keepAliveTimeout = 5 * time.Second
	// maxReconnectDelay caps the client's backoff between attempts to
	// reconnect, 120 s by default, so that electors are back soon after a
	// restart of etcd: with the jitter, a lost connection is tried again
	// at most 600 ms apart, and electors of the shortest TTL settle within
	// one TTL of etcd's return. (At a cap of 2 s, every client could first
	// try again up to 2.4 s after it, later than MinTTL.)
	maxReconnectDelay = MinTTL / 4
)

// reconnectFast returns the dial option of a client that retries a lost
// connection at most maxReconnectDelay apart (jitter aside), giving each
// attempt dial.
func reconnectFast(dial time.Duration) grpc.DialOption {
	return grpc.WithConnectParams(reconnectParams(dial))
}

// reconnectParams are the connection parameters of reconnectFast.
func reconnectParams(dial time.Duration) grpc.ConnectParams {
	return grpc.ConnectParams{
		Backoff: backoff.Config{
			BaseDelay:  100 * time.Millisecond,
			Multiplier: 1.6,
			Jitter:     0.2,
			MaxDelay:   maxReconnectDelay,
		},
		MinConnectTimeout: dial,
	}
}

// urlParams are the query parameters OpenURL knows, besides the TLS ones.
var urlParams = []string{"dialTimeout", "prefix"}

// tlsAliases are the deprecated spellings of the TLS parameters.
var tlsAliases = map[string]string{"ca": tlsparam.CAFile, "cert": tlsparam.CertFile, "key": tlsparam.KeyFile}

// OpenURL returns an elector for an etcd URL, with a client of its own that
// Close closes:
//
//	etcd://[user:password@]host[:port][,host[:port]...][?param=value&...]
//	etcds://...
//
// etcds connects with TLS, verifying the members' certificates against the
// system's roots or caFile. Endpoints without a port use DefaultPort. The user
// and password, when given, authenticate with etcd's auth; a wrong password
// fails with an error wrapping election.ErrPermissionDenied. Parameters:
//
//	prefix       the election's key prefix (Options.Prefix)
//	dialTimeout  bound on connecting and authenticating (default 5s): a Go
//	             duration such as 1500ms or 5s, or a number of seconds such as 5,
//	             as the common parameters
//	caFile             PEM file of the CA that signs the members' certificates (etcds only)
//	certFile, keyFile  PEM files of a client certificate and its key (etcds only)
//	tlsServerName      name to verify in the members' certificates, by default
//	                   the endpoint's host (etcds only)
//
// The TLS parameters are those of the consuls and rediss URLs. The names
// ca, cert and key are deprecated aliases of caFile, certFile and keyFile;
// a URL that gives both an alias and its name is refused.
//
// The common election parameters (resource, id, value, ttl, renewInterval,
// retryInterval, waitTime, requestTimeout) override opts, as in
// backends.Open; any other parameter is an error that names it. OpenURL
// opens an etcd URL without linking the other stores. ctx bounds connecting and
// authenticating. opts.Session must be nil: an elector on a shared session
// is made with New, on the session backend's client.
func OpenURL(ctx context.Context, u *url.URL, opts election.Options) (*election.Elector, error) {
	if opts.Session != nil {
		return nil, &election.OptionError{Field: "Session", Rule: "must be nil for OpenURL, whose elector has a client of its own: make electors on a shared session with New, on the client of the session's backend", Value: "a shared session"}
	}
	opts, u, err := urlparam.WithCommon(u, opts)
	if err != nil {
		return nil, err
	}
	b, err := OpenBackend(ctx, u, opts)
	if err != nil {
		return nil, err
	}
	b.alone = true
	e, err := election.NewOwning(b, opts)
	if err != nil {
		_ = b.Close()
		return nil, err
	}
	return e, nil
}

// OpenBackend returns the Backend for the URL u, with the parameters
// OpenURL takes, for electors of opts: their TTL is checked, and the prefix
// parameter names the prefix of opts.Resource. The backend owns the client
// it creates and closes it in Close.
func OpenBackend(ctx context.Context, u *url.URL, opts election.Options) (*Backend, error) {
	cfg, eopts, err := parseURL(u, opts)
	if err != nil {
		return nil, err
	}
	if err := eopts.validateForBackend(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("etcd: connect: %w", err)
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) < cfg.DialTimeout {
		cfg.DialTimeout = max(time.Until(d), time.Millisecond)
	}
	cfg.Logger = zapToSlog(eopts.WithDefaults().Logger)
	cfg.DialOptions = append(cfg.DialOptions, reconnectFast(cfg.DialTimeout))
	client, err := clientv3.New(cfg)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = errors.Join(cerr, err)
		}
		return nil, storeError("connect to "+strings.Join(cfg.Endpoints, ","), err)
	}
	b, err := NewBackend(client, eopts)
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	b.owned = true
	return b, nil
}

// parseURL turns an etcd URL into a client configuration and options.
func parseURL(u *url.URL, opts election.Options) (clientv3.Config, Options, error) {
	var cfg clientv3.Config
	eopts := Options{Options: opts}
	if u == nil {
		return cfg, eopts, urlError("", "is required", "nil")
	}
	scheme := "http"
	switch u.Scheme {
	case "etcd":
	case "etcds":
		scheme = "https"
	default:
		return cfg, eopts, urlError("scheme", `must be "etcd" or "etcds"`, strconv.Quote(u.Scheme))
	}
	if u.Opaque != "" || u.Path != "" && u.Path != "/" {
		return cfg, eopts, urlError("path", "must be empty: the election is named by its resource or the prefix parameter", strconv.Quote(u.EscapedPath()+u.Opaque))
	}
	if u.Fragment != "" {
		return cfg, eopts, urlError("fragment", "must be empty", strconv.Quote(u.Fragment))
	}
	eps, err := endpoints(u.Host, scheme)
	if err != nil {
		return cfg, eopts, err
	}
	cfg = clientv3.Config{
		Endpoints:            eps,
		DialTimeout:          DefaultDialTimeout,
		DialKeepAliveTime:    keepAliveTime,
		DialKeepAliveTimeout: keepAliveTimeout,
	}
	if u.User != nil {
		cfg.Username = u.User.Username()
		cfg.Password, _ = u.User.Password()
		if cfg.Username == "" {
			return cfg, eopts, urlError("user", "must not be empty when the URL has user information", `""`)
		}
	}

	q := u.Query()
	tp, err := tlsparam.Take(q, tlsAliases)
	if err != nil {
		return cfg, eopts, err
	}
	var unknown []string
	for name, values := range q {
		if !slices.Contains(urlParams, name) {
			unknown = append(unknown, strconv.Quote(name))
		} else if len(values) != 1 {
			return cfg, eopts, urlError(name, "must be given once", fmt.Sprintf("%d values", len(values)))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return cfg, eopts, urlError("query", "has unknown parameters "+strings.Join(unknown, ", ")+
			"; the etcd backend knows "+strings.Join(slices.Sorted(slices.Values(slices.Concat(urlParams, tlsparam.Names))), ", "), "")
	}
	if q.Has("prefix") {
		if eopts.Prefix = q.Get("prefix"); eopts.Prefix == "" {
			return cfg, eopts, urlError("prefix", "must not be empty when given", `""`)
		}
	}
	if q.Has("dialTimeout") {
		d, err := urlparam.DurationOrSeconds("dialTimeout", q.Get("dialTimeout"))
		if err != nil {
			return cfg, eopts, err
		}
		if d <= 0 {
			return cfg, eopts, urlError("dialTimeout", "must be a positive duration such as 5s, 1500ms or 5 (seconds)", strconv.Quote(q.Get("dialTimeout")))
		}
		cfg.DialTimeout = d
	}
	if scheme != "https" {
		if name := tp.Any(); name != "" {
			return cfg, eopts, urlError(name, "needs the etcds scheme", "")
		}
		return cfg, eopts, nil
	}
	cfg.TLS, err = tp.Config()
	if tp.ServerName != "" {
		// gRPC verifies the authority, not the configuration's ServerName.
		cfg.DialOptions = append(cfg.DialOptions, grpc.WithAuthority(tp.ServerName))
	}
	return cfg, eopts, err
}

// endpoints splits a comma-separated list of host[:port] into client URLs.
func endpoints(hosts, scheme string) ([]string, error) {
	if hosts == "" {
		return nil, urlError("host", "must list at least one etcd endpoint, as host[:port][,host[:port]...]", `""`)
	}
	var eps []string
	for _, h := range strings.Split(hosts, ",") {
		host, port := h, strconv.Itoa(DefaultPort)
		if i := strings.LastIndexByte(h, ':'); i >= 0 && i > strings.LastIndexByte(h, ']') {
			var err error
			if host, port, err = net.SplitHostPort(h); err != nil {
				return nil, urlError("host", "must be host[:port]", strconv.Quote(h))
			}
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		if n, err := strconv.Atoi(port); host == "" || err != nil || n < 1 || n > 65535 {
			return nil, urlError("host", "must be host[:port] with a port from 1 to 65535", strconv.Quote(h))
		}
		eps = append(eps, scheme+"://"+net.JoinHostPort(host, port))
	}
	return eps, nil
}

// urlError is an *election.OptionError about part of an etcd URL.
func urlError(part, rule, value string) error {
	field := "URL"
	if part != "" {
		field += " " + part
	}
	return &election.OptionError{Field: field, Rule: rule, Value: value}
}
