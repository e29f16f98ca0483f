package leaderprom_test

import (
	"context"
	"testing"
	"testing/synctest"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
	leaderprom "github.com/consul-leader/consul-leader/prometheus"
)

// TestForget: a forgotten resource has no series left; led again, it
// counts from zero, and a term that ends after Forget brings back no
// negative is_leader.
func TestForget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		p := newProc(t, leaderprom.Options{})
		p.m.Track("kept")
		el := p.startElector(t, store, election.Options{Resource: "r", ID: "a"}, nil)
		synctest.Wait()
		if err := el.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		p.m.Forget("r")
		p.expect(t,
			`leader_election_is_leader{resource="kept"} 0`,
			`leader_election_terms_started_total{resource="kept"} 0`)
		if n := len(p.causes(t, "r")); n != 0 {
			t.Errorf("%d terms_ended_total series of r after Forget", n)
		}

		// Led again (after RetryInterval), then forgotten while leading:
		// the end of that term must not bring is_leader back, at -1.
		waitLeader(t, store, "r")
		p.expect(t,
			`leader_election_is_leader{resource="kept"} 0`,
			`leader_election_is_leader{resource="r"} 1`,
			`leader_election_terms_started_total{resource="kept"} 0`,
			`leader_election_terms_started_total{resource="r"} 1`)
		p.m.Forget("r")
		if err := el.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		p.expect(t, `leader_election_is_leader{resource="kept"} 0`)
		if c := p.causes(t, "r"); len(c) != 0 {
			t.Errorf("terms ended of r after Forget: %v, want none", c)
		}
	})
}
