package leaderprom_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/consul-leader/consul-leader/election"
	leaderprom "github.com/consul-leader/consul-leader/prometheus"
)

// TestRenewalOutcomes: a renewal is ok, late (its reply came after the
// step-down deadline, as after a stall of the process, which the engine's
// own timers otherwise prevent) or error, each observed with its duration.
func TestRenewalOutcomes(t *testing.T) {
	m, err := leaderprom.New(leaderprom.Options{RenewalBuckets: []float64{0.01, 0.1, 1}})
	if err != nil {
		t.Fatal(err)
	}
	obs := m.Observer()
	src := election.Source{Resource: "r", Term: 3, Session: "s"}
	obs.Renewed(election.Renewal{Source: src, Latency: 5 * time.Millisecond, Margin: 8 * time.Second})
	obs.Renewed(election.Renewal{Source: src, Latency: 50 * time.Millisecond, Margin: 7 * time.Second})
	obs.Renewed(election.Renewal{Source: src, Latency: 500 * time.Millisecond, Margin: -100 * time.Millisecond})
	obs.Renewed(election.Renewal{Source: src, Latency: 2 * time.Second, Margin: 3 * time.Second, Err: errors.New("timeout")})
	want := `# HELP leader_election_renewal_duration_seconds Duration of session renewals, by outcome (ok, late: succeeded after the step-down deadline, error).
# TYPE leader_election_renewal_duration_seconds histogram
leader_election_renewal_duration_seconds_bucket{outcome="error",le="0.01"} 0
leader_election_renewal_duration_seconds_bucket{outcome="error",le="0.1"} 0
leader_election_renewal_duration_seconds_bucket{outcome="error",le="1"} 0
leader_election_renewal_duration_seconds_bucket{outcome="error",le="+Inf"} 1
leader_election_renewal_duration_seconds_sum{outcome="error"} 2
leader_election_renewal_duration_seconds_count{outcome="error"} 1
leader_election_renewal_duration_seconds_bucket{outcome="late",le="0.01"} 0
leader_election_renewal_duration_seconds_bucket{outcome="late",le="0.1"} 0
leader_election_renewal_duration_seconds_bucket{outcome="late",le="1"} 1
leader_election_renewal_duration_seconds_bucket{outcome="late",le="+Inf"} 1
leader_election_renewal_duration_seconds_sum{outcome="late"} 0.5
leader_election_renewal_duration_seconds_count{outcome="late"} 1
leader_election_renewal_duration_seconds_bucket{outcome="ok",le="0.01"} 1
leader_election_renewal_duration_seconds_bucket{outcome="ok",le="0.1"} 2
leader_election_renewal_duration_seconds_bucket{outcome="ok",le="1"} 2
leader_election_renewal_duration_seconds_bucket{outcome="ok",le="+Inf"} 2
leader_election_renewal_duration_seconds_sum{outcome="ok"} 0.055
leader_election_renewal_duration_seconds_count{outcome="ok"} 2
`
	if err := testutil.CollectAndCompare(m, strings.NewReader(want), "leader_election_renewal_duration_seconds"); err != nil {
		t.Error(err)
	}
}
