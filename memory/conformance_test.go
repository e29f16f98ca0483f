//go:build go1.25

package memory_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// testStore adapts a memory.Store to the conformance suite.
type testStore struct{ store *memory.Store }

type link struct {
	store *memory.Store
	name  string
}

func (l link) Cut()  { l.store.Cut(l.name) }
func (l link) Heal() { l.store.Heal(l.name) }

func (s testStore) NewCandidate(t testing.TB, opts election.Options) (election.Elector, conformance.Link, error) {
	el, err := memory.New(s.store, opts)
	return el, link{s.store, opts.ID}, err
}

func (s testStore) Remove(t testing.TB, resource string, what conformance.Removal) {
	var ok bool
	if what == conformance.RemoveRecord {
		ok = s.store.DeleteRecord(resource)
	} else {
		ok = s.store.Expire(resource)
	}
	if !ok {
		t.Fatalf("no leader of %q to remove", resource)
	}
}

func open(t *testing.T) conformance.Store { return testStore{memory.NewStore()} }

// TestConformanceSynctest runs the suite in fake time: TTLs of 15 s pass in
// microseconds, and every timing is exact.
func TestConformanceSynctest(t *testing.T) {
	conformance.Run(t, conformance.Config{
		Name:  "memory",
		Open:  open,
		TTL:   15 * time.Second,
		Slack: 100 * time.Millisecond,
		Wrap:  synctest.Test,
	})
}

// TestConformanceRealTime runs the suite again in real time, with short TTLs.
func TestConformanceRealTime(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time suite skipped in -short mode")
	}
	conformance.Run(t, conformance.Config{
		Name:     "memory",
		Open:     open,
		TTL:      time.Second,
		Parallel: true,
	})
}
