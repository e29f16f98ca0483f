package redis

import (
	"fmt"
	"log/slog"
	"strings"
	"unicode"

	"github.com/consul-leader/consul-leader/election"
)

// DefaultKeyPrefix is BackendOptions.KeyPrefix when it is empty.
const DefaultKeyPrefix = "election"

// MaxKeyPrefixLength bounds BackendOptions.KeyPrefix, in bytes.
const MaxKeyPrefixLength = 128

// Options configure an elector built by New.
type Options struct {
	// Options are the election options common to every backend: Resource
	// (required), ID, Value, TTL, RenewInterval, RetryInterval, WaitTime,
	// RequestTimeout and Logger, with their documented defaults.
	election.Options

	// Redis holds the options of this backend. Its Logger defaults to
	// Options.Logger.
	Redis BackendOptions
}

// BackendOptions configure a Backend. The zero value selects every default.
type BackendOptions struct {
	// KeyPrefix starts the name of every key and channel the backend uses:
	// a resource R is led through the key "<KeyPrefix>:{R}:leader", its
	// terms are counted in "<KeyPrefix>:{R}:term", and releases are
	// announced on the channel "<KeyPrefix>:{R}:events". The braces make
	// the keys of one resource share a Redis Cluster hash slot. At most 128
	// printable bytes, without spaces, braces or control characters.
	// Default: DefaultKeyPrefix ("election").
	KeyPrefix string

	// MaxRequests bounds the requests the backend has in flight at a time,
	// all its electors together, and so the connections it takes from the
	// client's pool: a burst (a shared session acquiring thousands of
	// resources at once) then waits its turn instead of growing the pool to
	// its PoolSize. The release-notice subscription holds one more
	// connection, and a shared session's renewals take none of the slots
	// (one more connection while one is in flight). A request waiting for a
	// slot counts against its deadline, but a shared session lets at most
	// half of them (at least one) acquire at a time and its other electors
	// wait their turn before their request begins (see
	// election.AcquireLimiter). Default: DefaultMaxRequests (8).
	MaxRequests int

	// Logger receives the backend's own logs (the release-notice
	// subscription connecting, failing or being refused). Default: New uses
	// Options.Logger; NewBackend uses election.DefaultLogger(), which passes
	// warnings and errors to slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns o with every zero field set to its default.
func (o BackendOptions) WithDefaults() BackendOptions {
	if o.KeyPrefix == "" {
		o.KeyPrefix = DefaultKeyPrefix
	}
	if o.Logger == nil {
		o.Logger = election.DefaultLogger()
	}
	if o.MaxRequests == 0 {
		o.MaxRequests = DefaultMaxRequests
	}
	return o
}

// Validate reports the first invalid field, with defaults applied, as an
// *election.OptionError whose Field is prefixed with "Redis.".
func (o BackendOptions) Validate() error {
	o = o.WithDefaults()
	switch {
	case len(o.KeyPrefix) > MaxKeyPrefixLength:
		return &election.OptionError{Field: "Redis.KeyPrefix", Rule: fmt.Sprintf("must be at most %d bytes", MaxKeyPrefixLength), Value: fmt.Sprintf("%d bytes", len(o.KeyPrefix))}
	case strings.ContainsAny(o.KeyPrefix, "{}"):
		return &election.OptionError{Field: "Redis.KeyPrefix", Rule: "must not contain { or }, which would change the keys' hash slot", Value: fmt.Sprintf("%q", o.KeyPrefix)}
	case o.MaxRequests < 0:
		return &election.OptionError{Field: "Redis.MaxRequests", Rule: "must not be negative", Value: fmt.Sprint(o.MaxRequests)}
	case strings.IndexFunc(o.KeyPrefix, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) >= 0:
		return &election.OptionError{Field: "Redis.KeyPrefix", Rule: "must be printable text without spaces", Value: fmt.Sprintf("%q", o.KeyPrefix)}
	}
	return nil
}

// WithDefaults returns o with every zero field set to its default; the
// backend's logger defaults to the elector's.
func (o Options) WithDefaults() Options {
	o.Options = o.Options.WithDefaults()
	if o.Redis.Logger == nil {
		o.Redis.Logger = o.Options.Logger
	}
	o.Redis = o.Redis.WithDefaults()
	return o
}

// Validate reports the first invalid option as an *election.OptionError:
// the election options first, then the backend's.
func (o Options) Validate() error {
	if err := o.Options.Validate(); err != nil {
		return err
	}
	return o.Redis.Validate()
}
