// Package leaderprom exports the elections of consul-leader as Prometheus
// metrics. It is the module github.com/consul-leader/consul-leader/prometheus,
// apart from the library's, so that only the programs that use it depend on
// the Prometheus client. Its package name is leaderprom, which leaves the
// name prometheus to the client library:
//
//	import leaderprom "github.com/consul-leader/consul-leader/prometheus"
//
// New returns a Metrics, a prometheus.Collector: register it with the
// Registerer of your choice (nothing is registered globally), and attach its
// Observer to every elector (election.Options.Observers) and shared session
// (election.SessionOptions.Observers) to observe; one Metrics serves any
// number of them:
//
//	metrics, err := leaderprom.New(leaderprom.Options{})
//	reg.MustRegister(metrics)
//	el, err := consul.New(nil, consul.Options{Options: election.Options{
//		Resource:  "billing-cron",
//		Observers: []*election.Observer{metrics.Observer()},
//	}})
//
// # Metrics
//
// Every name starts with Options.Namespace, by default "leader_election":
//
//	leader_election_is_leader{resource}                  gauge      1 while this process leads the resource, else 0
//	leader_election_term{resource}                       gauge      term (fencing token) of the latest term started here
//	leader_election_terms_started_total{resource}        counter    terms started: times this process became leader
//	leader_election_terms_ended_total{resource,cause}    counter    terms ended, by cause
//	leader_election_last_renewal_timestamp_seconds{resource}
//	                                                     gauge      start of the last successful renewal of the session of the running term
//	leader_election_renewal_duration_seconds{outcome}    histogram  session renewals: ok, late, error
//	leader_election_store_errors_total{op}               counter    failed store requests, by operation
//	leader_election_handler_overruns_total{resource}     counter    terms whose handler ran a TTL or more past their end
//	leader_election_handlers_overrunning{resource}       gauge      such handlers still running
//
// cause is one of election.EndCause's names: released, lost, session_lost,
// store_unreachable, handler_error, handler_panic, closed, unknown. op is an
// election.Op: create_session, acquire, renew, release, watch, read,
// raise_term_floor; its counters exist from the start, at zero. The
// outcome of a renewal is ok, late (it succeeded, but its reply came after
// the step-down deadline, too late to keep the terms) or error.
//
// is_leader is the number of terms of the resource running in this
// process: 0 or 1, for one elector per resource or several taking turns.
// A term counts from TermStarted, before the handler's leader call, to
// TermEnded, as soon as the term's context ends: at the step-down deadline
// at the latest, while the handler may still be returning.
// last_renewal_timestamp_seconds exists only while the process leads the
// resource: time() minus it is how long the leader has gone without a
// renewal, and the leader steps down when it reaches TTL - TTL/10. A term
// whose session was not renewed yet shows the term's start. Renewals are
// the session's: a shared session's renewals serve every term on it.
//
// A resource shows up at its first term. Track creates its series at zero
// beforehand, so that a follower shows is_leader 0 and the first term
// counts in increase(). Forget removes them, once the process no longer
// campaigns for the resource.
//
// # Many resources
//
// Each resource has its own is_leader, term, terms_started_total and
// last_renewal_timestamp_seconds series, and one terms_ended_total series
// per cause seen: about five series per resource led, 50,000 for a process
// leading 10,000 resources, which a scrape takes 0.1–0.2 s to gather
// (BenchmarkScrape). The renewal histogram and the store errors have no
// resource label. To bound the number of series, Options.ResourceLabel
// maps resources to groups (a tenant, a shard range), or all of them to one
// value (AllResources); each series then adds up its group: is_leader
// counts the terms of the group running, the counters add up, term is the
// latest term started in the group, and last_renewal_timestamp_seconds is
// the oldest among the group's running terms.
package leaderprom
