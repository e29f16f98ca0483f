package leaderprom_test

import (
	"fmt"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	leaderprom "github.com/consul-leader/consul-leader/prometheus"
)

// TestManySessions: the renewal times of thousands of sessions that no
// running term uses are dropped, but never that of a running term's
// session, however old; and a renewal sent before the term started, the
// session's first, replaces the term's start as its last renewal.
func TestManySessions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := newProc(t, leaderprom.Options{})
		obs := p.m.Observer()
		kept := election.Source{Resource: "r", Term: 5, Session: "kept"}
		obs.TermStarted(election.TermStart{Source: kept, TTL: 24 * time.Hour})
		obs.Renewed(election.Renewal{Source: kept, Latency: time.Second, Margin: time.Hour})
		want := float64(time.Now().Add(-time.Second).UnixNano()) / 1e9
		time.Sleep(2 * time.Hour)
		for i := range 5000 {
			obs.Renewed(election.Renewal{Source: election.Source{Session: fmt.Sprintf("s-%d", i)}, Margin: time.Second})
		}
		got := p.value(t, "leader_election_last_renewal_timestamp_seconds", "resource", "r")
		if math.IsNaN(got) || math.Abs(got-want) > 1e-6 {
			t.Errorf("last renewal of the running term %v, want %v", got, want)
		}
		obs.TermEnded(election.TermEnd{Source: kept, Cause: election.CauseClosed})
	})
}
