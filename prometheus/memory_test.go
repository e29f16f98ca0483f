package leaderprom_test

import (
	"context"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
	leaderprom "github.com/consul-leader/consul-leader/prometheus"
)

const ttl = 10 * time.Second

// TestTermsOfTwoProcesses follows two processes, each with its own
// registry, through a takeover after a release, a leadership taken away
// (the record deleted), a session ended by the store, and a leader cut off
// from its store: is_leader, term, and the terms started and ended by cause
// of each, as a scrape shows them.
func TestTermsOfTwoProcesses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		pa, pb := newProc(t, leaderprom.Options{}), newProc(t, leaderprom.Options{})
		pb.m.Track("r")
		a := pa.startElector(t, store, election.Options{Resource: "r", ID: "a", TTL: ttl}, nil)
		synctest.Wait()
		_, t1 := store.Leader("r")
		pa.expect(t,
			`leader_election_is_leader{resource="r"} 1`,
			termLine("r", t1),
			`leader_election_terms_started_total{resource="r"} 1`)
		b := pb.startElector(t, store, election.Options{Resource: "r", ID: "b", TTL: ttl}, nil)
		synctest.Wait()
		pb.expect(t,
			`leader_election_is_leader{resource="r"} 0`,
			`leader_election_terms_started_total{resource="r"} 0`)

		// A release: b takes over.
		if err := a.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		_, t2 := store.Leader("r")
		pa.expect(t,
			`leader_election_is_leader{resource="r"} 0`,
			termLine("r", t1),
			`leader_election_terms_ended_total{cause="released",resource="r"} 1`)
		pb.expect(t,
			`leader_election_is_leader{resource="r"} 1`,
			termLine("r", t2),
			`leader_election_terms_started_total{resource="r"} 1`)

		// The record deleted from outside: b lost its leadership (and,
		// campaigning again at once, leads a new term).
		store.DeleteRecord("r")
		synctest.Wait()
		if v := pb.value(t, "leader_election_terms_ended_total", "resource", "r", "cause", "lost"); v != 1 {
			t.Errorf("b: terms ended for lost: %v, want 1", v)
		}
		waitLeader(t, store, "r")

		// The leader's session expired in the store, which frees its
		// record: its watch sees the record go first, a loss too.
		first, _ := store.Leader("r")
		leader, _ := pick(first, pa, pb)
		lostBefore := leader.value(t, "leader_election_terms_ended_total", "resource", "r", "cause", "lost")
		if math.IsNaN(lostBefore) {
			lostBefore = 0 // no loss counted yet
		}
		store.Expire("r")
		synctest.Wait()
		if v := leader.value(t, "leader_election_terms_ended_total", "resource", "r", "cause", "lost"); v != lostBefore+1 {
			t.Errorf("terms ended for lost after the expiry: %v, want %v", v, lostBefore+1)
		}

		// The next leader cut off from its store: it steps down at its
		// step-down deadline, TTL - StepDownMargin after the start of its
		// last successful renewal, not a moment later.
		id, _ := waitLeader(t, store, "r")
		leader, _ = pick(id, pa, pb)
		time.Sleep(ttl) // a few renewals
		synctest.Wait()
		store.Cut(id)
		defer store.Heal(id)
		last := leader.value(t, "leader_election_last_renewal_timestamp_seconds", "resource", "r")
		if math.IsNaN(last) {
			t.Fatal("no last_renewal_timestamp_seconds while leading")
		}
		deadline := time.Unix(0, int64(last*1e9)).Add(ttl - election.StepDownMargin(ttl))
		time.Sleep(time.Until(deadline) - time.Millisecond)
		synctest.Wait()
		if v := leader.value(t, "leader_election_is_leader", "resource", "r"); v != 1 {
			t.Fatalf("is_leader %v a millisecond before the step-down deadline, want 1", v)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if v := leader.value(t, "leader_election_is_leader", "resource", "r"); v != 0 {
			t.Errorf("is_leader %v a millisecond after the step-down deadline, want 0", v)
		}
		if v := leader.value(t, "leader_election_terms_ended_total", "resource", "r", "cause", "store_unreachable"); v != 1 {
			t.Errorf("terms ended for store_unreachable: %v, want 1", v)
		}
		if v := leader.value(t, "leader_election_last_renewal_timestamp_seconds", "resource", "r"); !math.IsNaN(v) {
			t.Errorf("last_renewal_timestamp_seconds %v after the term ended, want no series", v)
		}
		if v := leader.value(t, "leader_election_store_errors_total", "op", "renew"); !(v >= 1) {
			t.Errorf("store errors of renew: %v, want at least 1", v)
		}
		if v := leader.value(t, "leader_election_renewal_duration_seconds", "outcome", "error"); !(v >= 1) {
			t.Errorf("failed renewals: %v, want at least 1", v)
		}
		_ = b
	})
}

// waitLeader waits, for up to a TTL, until resource has a leader, and
// returns it.
func waitLeader(t *testing.T, store *memory.Store, resource string) (string, uint64) {
	t.Helper()
	for range 100 {
		if id, term := store.Leader(resource); id != "" {
			return id, term
		}
		time.Sleep(ttl / 100)
		synctest.Wait()
	}
	t.Fatalf("no leader of %s within %v", resource, ttl)
	return "", 0
}

// pick returns the process of candidate id ("a" or "b"), and the other.
func pick(id string, pa, pb *proc) (leader, other *proc) {
	if id == "a" {
		return pa, pb
	}
	return pb, pa
}
