package leaderprom

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/consul-leader/consul-leader/election"
)

// DefaultNamespace prefixes every metric name when Options.Namespace is
// empty: leader_election_is_leader, leader_election_terms_started_total, …
const DefaultNamespace = "leader_election"

// DefaultRenewalBuckets returns the upper bounds, in seconds, of the
// renewal duration histogram when Options.RenewalBuckets is nil: from 1 ms,
// a renewal on a local store, to 10 s, the longest default RequestTimeout.
func DefaultRenewalBuckets() []float64 {
	return []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
}

// Options configure Metrics. The zero value selects every default.
type Options struct {
	// Namespace prefixes every metric name, joined with an underscore.
	// Default: DefaultNamespace ("leader_election"). It must match
	// [a-zA-Z_:][a-zA-Z0-9_:]*, as a metric name does.
	Namespace string

	// ResourceLabel maps a resource to the value of the resource label of
	// its series. Default: nil, the resource itself: one set of series per
	// resource. A process that leads many resources can bound the number of
	// series by mapping them to groups (a tenant, a shard range) or all to
	// one value (AllResources): every per-resource metric then adds up the
	// resources of a group (see the package documentation). It must be safe
	// for concurrent use, and should be fast: it runs on every event.
	ResourceLabel func(resource string) string

	// RenewalBuckets are the upper bounds, in seconds, of the buckets of
	// the renewal duration histogram, in increasing order. Default:
	// DefaultRenewalBuckets().
	RenewalBuckets []float64
}

// AllResources is an Options.ResourceLabel that gives every resource the
// same label value, "all": one set of series for the whole process,
// whatever the number of resources it leads.
func AllResources(string) string { return "all" }

var metricNamePart = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.RenewalBuckets == nil {
		o.RenewalBuckets = DefaultRenewalBuckets()
	}
	return o
}

// Validate reports the first invalid option, with defaults applied, as an
// *election.OptionError naming the field.
func (o Options) Validate() error {
	o = o.WithDefaults()
	if !metricNamePart.MatchString(o.Namespace) {
		return &election.OptionError{Field: "Namespace", Rule: "must match " + metricNamePart.String() + ", as a metric name does", Value: strconv.Quote(o.Namespace)}
	}
	if len(o.RenewalBuckets) == 0 {
		return &election.OptionError{Field: "RenewalBuckets", Rule: "must hold at least one bound, or be nil for the default", Value: "[]"}
	}
	for i := 1; i < len(o.RenewalBuckets); i++ {
		if !(o.RenewalBuckets[i] > o.RenewalBuckets[i-1]) {
			return &election.OptionError{Field: "RenewalBuckets", Rule: "must increase", Value: fmt.Sprintf("%v after %v", o.RenewalBuckets[i], o.RenewalBuckets[i-1])}
		}
	}
	return nil
}
