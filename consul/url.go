package consul

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/tlsparam"
	"github.com/consul-leader/consul-leader/internal/urlparam"
)

// URL schemes OpenURL accepts.
const (
	// Scheme is Consul's HTTP API.
	Scheme = "consul"
	// SchemeTLS is Consul's HTTP API over TLS.
	SchemeTLS = "consuls"
)

// OpenURL returns an elector for opts on the Consul agent u names:
//
//	consul://host:port?token=…&datacenter=…&key=…&lockDelay=…&checkTTL=…&sessionName=…&handoff=true
//	consuls://host:port?caFile=…&certFile=…&keyFile=…&tlsServerName=…
//
// consuls speaks HTTPS, with the system's roots unless caFile is given;
// certFile and keyFile give a client certificate, tlsServerName the name to
// verify. These TLS parameters are those of etcds and rediss URLs too; a
// file that cannot be read is an error naming its parameter. lockDelay and
// checkTTL are durations in the syntax of the common parameters: a Go
// duration such as 1500ms or 15s, or a plain number of seconds such as 15
// or 0.5; lockDelay=none (or 0) means no lock-delay. Without a host, the
// address comes from the environment (CONSUL_HTTP_ADDR), as do the token and TLS
// files when not given. The common election parameters (resource, id,
// value, ttl, renewInterval, retryInterval, waitTime, requestTimeout)
// override opts, as in backends.Open; any other parameter is an error that
// names it. OpenURL opens a Consul URL without linking the other stores. With checkTTL, opts.TTL defaults to it (see
// URLDefaults), as in New and in backends.Open. The elector owns the client
// it creates and closes it in Close.
func OpenURL(ctx context.Context, u *url.URL, opts election.Options) (*election.Elector, error) {
	opts, u, err := urlparam.WithCommon(u, opts)
	if err != nil {
		return nil, err
	}
	opts = URLDefaults(u, opts)
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

// URLDefaults returns opts with the defaults the parameters of u imply, as
// Options.CheckTTL does in New: when opts.TTL is zero and u has a valid
// checkTTL, the TTL is the check's TTL. OpenURL and backends.Open apply it,
// so that the three ways of configuring an elector agree. It returns opts
// unchanged when u cannot be parsed: OpenBackend reports why.
func URLDefaults(u *url.URL, opts election.Options) election.Options {
	if opts.TTL != 0 || u == nil {
		return opts
	}
	o, _, err := parseURL(u)
	if err != nil {
		return opts
	}
	o.Options = opts
	return o.withDefaults().Options
}

// OpenBackend returns the Backend for the URL u, with the parameters
// OpenURL takes, for electors of opts: their TTL is checked against
// Consul's bounds (with checkTTL, it must be set, to at most checkTTL), and
// the key parameter names the key of opts.Resource. The backend owns the
// client it creates and closes it in Close.
func OpenBackend(ctx context.Context, u *url.URL, opts election.Options) (*Backend, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	o, cfg, err := parseURL(u)
	if err != nil {
		return nil, err
	}
	o.Options = opts
	if err := o.validateBackend(); err != nil {
		return nil, err
	}
	if err := o.validateTTL(opts.WithDefaults().TTL); err != nil {
		return nil, err
	}
	boundConns(cfg, o)
	client, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul: client for %s://%s: %w", u.Scheme, u.Host, err)
	}
	return newBackend(o, client, cfg.Transport), nil
}

// parseURL returns the Consul options and the client configuration u names.
func parseURL(u *url.URL) (Options, *api.Config, error) {
	var o Options
	if u == nil {
		return o, nil, &election.OptionError{Field: "URL", Rule: "is required"}
	}
	cfg := api.DefaultConfig()
	switch u.Scheme {
	case Scheme:
		cfg.Scheme = "http"
	case SchemeTLS:
		cfg.Scheme = "https"
	default:
		return o, nil, &election.OptionError{Field: "URL", Rule: fmt.Sprintf("scheme must be %s or %s", Scheme, SchemeTLS), Value: u.Scheme}
	}
	if u.User != nil {
		return o, nil, &election.OptionError{Field: "URL", Rule: "must not hold user information; pass the ACL token as the token parameter"}
	}
	if u.Path != "" && u.Path != "/" {
		return o, nil, &election.OptionError{Field: "URL", Rule: "must not have a path; set the key with the key parameter", Value: u.Path}
	}
	if u.Host != "" {
		cfg.Address = u.Host
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return o, nil, &election.OptionError{Field: "URL", Rule: "query must be valid: " + err.Error(), Value: u.RawQuery}
	}
	tp, err := tlsparam.Take(q, nil)
	if err != nil {
		return o, nil, err
	}
	var unknown []string
	for name, values := range q {
		known, err := setParam(&o, name, values[0])
		switch {
		case !known:
			unknown = append(unknown, name)
		case len(values) != 1:
			return o, nil, &election.OptionError{Field: "URL parameter " + name, Rule: "must be given once", Value: strings.Join(values, ", ")}
		case err != nil:
			return o, nil, err
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return o, nil, &election.OptionError{Field: "URL", Rule: "has unknown parameters for consul: " + strings.Join(unknown, ", ")}
	}
	if cfg.Scheme == "http" {
		if name := tp.Any(); name != "" {
			return o, nil, &election.OptionError{Field: "URL parameter " + name, Rule: "needs the " + SchemeTLS + " scheme"}
		}
		return o, cfg, nil
	}
	// The files are read here so that an error names the parameter; the
	// client reads them again, with the TLS settings of the environment.
	if _, err := tp.Config(); err != nil {
		return o, nil, err
	}
	for dst, v := range map[*string]string{&cfg.TLSConfig.CAFile: tp.CAFile, &cfg.TLSConfig.CertFile: tp.CertFile, &cfg.TLSConfig.KeyFile: tp.KeyFile, &cfg.TLSConfig.Address: tp.ServerName} {
		if v != "" {
			*dst = v
		}
	}
	return o, cfg, nil
}

// setParam sets the option of URL parameter name to v; it reports false for
// a parameter it does not know.
func setParam(o *Options, name, v string) (known bool, err error) {
	switch name {
	case "token":
		o.Token = v
	case "datacenter":
		o.Datacenter = v
	case "key":
		o.Key = v
	case "sessionName":
		o.SessionName = v
	case "lockDelay":
		err = parseLockDelay(&o.LockDelay, v)
	case "checkTTL":
		err = parseDuration("checkTTL", &o.CheckTTL, v)
	case "handoff":
		o.Handoff, err = strconv.ParseBool(v)
		if err != nil {
			err = &election.OptionError{Field: "URL parameter handoff", Rule: "must be true or false", Value: v}
		}
	default:
		return false, nil
	}
	return true, err
}

func parseLockDelay(dst *time.Duration, v string) error {
	if v == "none" {
		*dst = NoLockDelay
		return nil
	}
	if err := parseDuration("lockDelay", dst, v); err != nil {
		return err
	}
	if *dst == 0 {
		*dst = NoLockDelay // an explicit 0 means none, not the default
	}
	return nil
}

func parseDuration(name string, dst *time.Duration, v string) error {
	d, err := urlparam.DurationOrSeconds(name, v)
	if err != nil {
		return err
	}
	if d < 0 {
		return &election.OptionError{Field: "URL parameter " + name, Rule: "must be a non-negative duration such as 15s, 1500ms or 15 (seconds)", Value: v}
	}
	*dst = d
	return nil
}
