package leaderprom_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
	leaderprom "github.com/consul-leader/consul-leader/prometheus"
)

// startShared opens a shared session on store, observed by p, closed when
// t ends, and starts an elector on it for each resource.
func startShared(t *testing.T, p *proc, store *memory.Store, resources ...string) (*election.SharedSession, []*election.Elector) {
	t.Helper()
	sess, err := election.NewSharedSession(store.Connect("shared"), election.SessionOptions{
		TTL: ttl, Logger: quiet, Observers: []*election.Observer{p.m.Observer()},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sess.Close(context.Background()); err != nil {
			t.Errorf("close the shared session: %v", err)
		}
	})
	var els []*election.Elector
	for _, r := range resources {
		els = append(els, p.startElector(t, store, election.Options{Resource: r, ID: "p", Session: sess}, nil))
	}
	return sess, els
}

// TestSharedSession: the terms of every resource of a shared session show
// the session's renewals, and an expired session ends all of them.
func TestSharedSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		p := newProc(t, leaderprom.Options{})
		startShared(t, p, store, "r1", "r2")
		synctest.Wait()
		time.Sleep(ttl) // three renewals of the session
		synctest.Wait()
		r1 := p.value(t, "leader_election_last_renewal_timestamp_seconds", "resource", "r1")
		r2 := p.value(t, "leader_election_last_renewal_timestamp_seconds", "resource", "r2")
		age := time.Since(time.Unix(0, int64(r1*1e9)))
		if r1 != r2 || !(age >= 0 && age <= ttl/3) {
			t.Errorf("last renewals r1 %v, r2 %v (%v ago), want the session's, within RenewInterval %v", r1, r2, age, ttl/3)
		}
		if v := p.value(t, "leader_election_renewal_duration_seconds", "outcome", "ok"); v != 3 {
			t.Errorf("%v renewals ok after a TTL, want 3 (one every TTL/3)", v)
		}

		// The session expires in the store, which frees both records: each
		// term ends, as lost when its leader's watch sees its record go
		// first, as session_lost when the session's end is seen first.
		// (A session found gone by its renewal alone is session_lost:
		// TestRedisSharedSessionLost.)
		store.Expire("r1")
		synctest.Wait()
		for _, r := range []string{"r1", "r2"} {
			c := p.causes(t, r)
			if c["lost"]+c["session_lost"] != 1 || len(c) != 1 {
				t.Errorf("%s: terms ended by cause %v, want one, lost or session_lost", r, c)
			}
		}
		// Both led again, on a new session.
		time.Sleep(ttl)
		synctest.Wait()
		p.expect(t,
			`leader_election_is_leader{resource="r1"} 1`,
			`leader_election_is_leader{resource="r2"} 1`,
			`leader_election_terms_started_total{resource="r1"} 2`,
			`leader_election_terms_started_total{resource="r2"} 2`)
	})
}

// TestAllResources: with one label value for every resource, a process
// leading many resources has one set of series, which adds them up.
func TestAllResources(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		p := newProc(t, leaderprom.Options{ResourceLabel: leaderprom.AllResources})
		var resources []string
		for i := range 50 {
			resources = append(resources, fmt.Sprintf("tenant-%d", i))
		}
		_, els := startShared(t, p, store, resources...)
		synctest.Wait()
		for _, el := range els[:10] {
			if err := el.Release(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		p.expect(t,
			`leader_election_is_leader{resource="all"} 40`,
			`leader_election_terms_started_total{resource="all"} 50`,
			`leader_election_terms_ended_total{cause="released",resource="all"} 10`)
		if v := p.value(t, "leader_election_last_renewal_timestamp_seconds", "resource", "all"); math.IsNaN(v) {
			t.Error("no last_renewal_timestamp_seconds for the group")
		}
		time.Sleep(2 * time.Second) // RetryInterval: the ten campaign again
		synctest.Wait()
		p.expect(t, `leader_election_is_leader{resource="all"} 50`)
	})
}
