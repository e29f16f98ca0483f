package etcd

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/consul-leader/consul-leader/election"
)

// MinTTL is the shortest election TTL this backend accepts: the shortest
// lease an etcd member grants at its default --election-timeout of 1 s. A
// member raises a shorter lease TTL to 1.5 election timeouts, rounded up to
// whole seconds; with a longer election timeout it grants longer leases
// than asked, which only slows failover (Leadership.Session.TTL shows the lease granted).
const MinTTL = 2 * time.Second

// DefaultPrefixRoot is the root of the default election prefixes: the
// election of resource R lives under "election/R" (see DefaultPrefix).
const DefaultPrefixRoot = "election"

// Options configure an etcd elector: the common election options and the
// etcd-specific ones. The zero value of every field but Resource selects its
// documented default.
type Options struct {
	election.Options

	// Prefix is the key prefix of the election, as `etcdctl elect` and
	// concurrency.NewElection name it: each candidate puts the key
	// Prefix + "/" + its lease ID in hex. It must not be empty after
	// trimming, must not end with "/", and must be valid UTF-8. Two
	// elections must not use prefixes of which one is the other followed by
	// "/" and more. Default: DefaultPrefix(Resource), for example
	// "election/billing-cron".
	Prefix string
}

// DefaultPrefix returns the default key prefix of resource's election:
// "election/" followed by resource, in which every "/" is written %2F so that
// the election of "a" never sees the keys of the election of "a/b".
func DefaultPrefix(resource string) string {
	return DefaultPrefixRoot + "/" + strings.ReplaceAll(resource, "/", "%2F")
}

// Validate reports the first invalid option, with defaults applied, as an
// *election.OptionError naming the field and the rule it breaks. Besides the
// rules of election.Options, the TTL must be a whole number of seconds, at
// least MinTTL, because etcd leases count whole seconds.
func (o Options) Validate() error {
	if err := o.Options.Validate(); err != nil {
		return err
	}
	if err := validateTTL(o.WithDefaults().TTL); err != nil {
		return err
	}
	return validatePrefix(o.Prefix)
}

// validateForBackend checks what a backend needs of the options: the etcd
// rules, and the election rules when a resource is named (a backend may be
// opened for any resource).
func (o Options) validateForBackend() error {
	if o.Resource != "" {
		return o.Validate()
	}
	if o.TTL != 0 {
		if err := validateTTL(o.TTL); err != nil {
			return err
		}
	}
	return validatePrefix(o.Prefix)
}

func validateTTL(ttl time.Duration) error {
	switch {
	case ttl%time.Second != 0:
		return &election.OptionError{Field: "TTL", Rule: "must be a whole number of seconds: etcd leases count whole seconds", Value: ttl.String()}
	case ttl < MinTTL:
		return &election.OptionError{Field: "TTL", Rule: fmt.Sprintf("must be at least %v, the shortest lease etcd grants at its default election timeout", MinTTL), Value: ttl.String()}
	}
	return nil
}

func validatePrefix(p string) error {
	switch {
	case p == "":
		return nil
	case strings.TrimSpace(p) == "":
		return &election.OptionError{Field: "Prefix", Rule: "must not be blank", Value: fmt.Sprintf("%q", p)}
	case strings.HasSuffix(p, "/"):
		return &election.OptionError{Field: "Prefix", Rule: `must not end with "/": candidates' keys are Prefix + "/" + lease ID`, Value: fmt.Sprintf("%q", p)}
	case !utf8.ValidString(p):
		return &election.OptionError{Field: "Prefix", Rule: "must be valid UTF-8", Value: fmt.Sprintf("%q", p)}
	}
	return nil
}
