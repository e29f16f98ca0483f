package leaderprom

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/consul-leader/consul-leader/election"
)

// The outcome label of the renewal duration histogram.
const (
	// OutcomeOK is a renewal that succeeded in time.
	OutcomeOK = "ok"
	// OutcomeLate is a renewal that succeeded, but whose reply came at or
	// after the step-down deadline: too late to keep the session's terms.
	OutcomeLate = "late"
	// OutcomeError is a renewal that failed.
	OutcomeError = "error"
)

// Metrics is a prometheus.Collector of the elections it observes: attach
// its Observer to any number of electors (election.Options.Observers) and
// shared sessions (election.SessionOptions.Observers), and register it with
// a prometheus.Registerer of your choice. It is safe for concurrent use.
type Metrics struct {
	label    func(string) string
	observer *election.Observer

	isLeader     *prometheus.GaugeVec
	term         *prometheus.GaugeVec
	started      *prometheus.CounterVec
	ended        *prometheus.CounterVec
	renewal      *prometheus.HistogramVec
	lastRenewal  *prometheus.Desc
	storeErrors  *prometheus.CounterVec
	overruns     *prometheus.CounterVec
	overrunning  *prometheus.GaugeVec
	renewalByOut [3]prometheus.Observer // ok, late, error

	mu       sync.Mutex
	running  map[termKey]string     // the running terms, with their session IDs
	overran  map[termKey]struct{}   // the terms whose handlers are reported running past their end
	sessions map[string]renewalTime // by session ID: start of its last successful renewal
	pruneAt  int                    // len(sessions) at which to drop stale ones
}

// renewalTime is when the last successful renewal of a session started.
type renewalTime struct {
	at time.Time
	// guessed: no renewal seen yet, at is the start of a term on the
	// session, taken for its creation; any renewal replaces it.
	guessed bool
}

// termKey names one term of one resource.
type termKey struct {
	resource string
	term     uint64
}

// New returns the metrics of opts, not yet registered: pass them to a
// Registerer's Register or MustRegister. Invalid options are an
// *election.OptionError.
func New(opts Options) (*Metrics, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.WithDefaults()
	ns := opts.Namespace
	m := &Metrics{
		label:    opts.ResourceLabel,
		running:  map[termKey]string{},
		overran:  map[termKey]struct{}{},
		sessions: map[string]renewalTime{},
		pruneAt:  minPrune,
		isLeader: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "is_leader",
			Help: "1 while this process leads the resource, else 0 (with a grouping resource label: the number of terms of the group running).",
		}, []string{"resource"}),
		term: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "term",
			Help: "Term (fencing token) of the latest term this process started for the resource; it stays after the term ends.",
		}, []string{"resource"}),
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "terms_started_total",
			Help: "Terms this process started for the resource (times it became leader).",
		}, []string{"resource"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "terms_ended_total",
			Help: "Terms of this process that ended for the resource, by cause.",
		}, []string{"resource", "cause"}),
		renewal: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "renewal_duration_seconds",
			Help:    "Duration of session renewals, by outcome (ok, late: succeeded after the step-down deadline, error).",
			Buckets: opts.RenewalBuckets,
		}, []string{"outcome"}),
		lastRenewal: prometheus.NewDesc(prometheus.BuildFQName(ns, "", "last_renewal_timestamp_seconds"),
			"Unix time at which the last successful renewal of the session of the resource's running term started (its step-down deadline counts from it); present only while this process leads the resource.",
			[]string{"resource"}, nil),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "store_errors_total",
			Help: "Failed store requests, by operation.",
		}, []string{"op"}),
		overruns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "handler_overruns_total",
			Help: "Terms of the resource whose leader handler kept running a TTL or more after the term ended.",
		}, []string{"resource"}),
		overrunning: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "handlers_overrunning",
			Help: "Leader handlers of the resource still running a TTL or more after their term ended.",
		}, []string{"resource"}),
	}
	m.renewalByOut = [3]prometheus.Observer{
		m.renewal.WithLabelValues(OutcomeOK),
		m.renewal.WithLabelValues(OutcomeLate),
		m.renewal.WithLabelValues(OutcomeError),
	}
	m.observer = m.newObserver()
	return m, nil
}

func (m *Metrics) vectors() []prometheus.Collector {
	return []prometheus.Collector{m.isLeader, m.term, m.started, m.ended, m.renewal, m.storeErrors, m.overruns, m.overrunning}
}

// Describe sends the descriptors of every metric, as prometheus.Collector
// requires.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.vectors() {
		c.Describe(ch)
	}
	ch <- m.lastRenewal
}

// Collect sends the current value of every series, as prometheus.Collector
// requires.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.vectors() {
		c.Collect(ch)
	}
	for r, ts := range m.renewals() {
		ch <- prometheus.MustNewConstMetric(m.lastRenewal, prometheus.GaugeValue, float64(ts.UnixNano())/1e9, r)
	}
}

// renewals returns, by resource label value, the oldest last renewal of the
// sessions of its running terms.
func (m *Metrics) renewals() map[string]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]time.Time{}
	for k, session := range m.running {
		rn, ok := m.sessions[session]
		if !ok {
			continue
		}
		ts := rn.at
		r := m.resourceLabel(k.resource)
		if old, seen := out[r]; !seen || ts.Before(old) {
			out[r] = ts
		}
	}
	return out
}

// Track creates the series of resource at zero (is_leader 0, no term
// started), so that a process that has not led it yet shows as a follower,
// and its first term counts in increase() and rate(). Call it once for each
// resource the process campaigns for; it is optional.
func (m *Metrics) Track(resource string) {
	r := m.resourceLabel(resource)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.isLeader.WithLabelValues(r).Add(0)
	m.started.WithLabelValues(r).Add(0)
}

func (m *Metrics) resourceLabel(resource string) string {
	if m.label == nil {
		return resource
	}
	return m.label(resource)
}
