// Package memorytest adapts the in-memory store to the conformance suite:
//
//	conformance.Run(t, conformance.Config{
//		Name: "memory",
//		Open: func(t *testing.T) conformance.Store { return memorytest.New() },
//		Wrap: synctest.Test,
//	})
package memorytest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// Store is a memory.Store seen by the conformance suite.
type Store struct {
	*memory.Store
	// Wrap, if set, wraps each candidate's backend, for example to inject
	// a deliberate bug.
	Wrap func(election.Backend) election.Backend

	sessions atomic.Uint64 // shared sessions opened so far
}

var (
	_ conformance.SessionStore = (*Store)(nil)
	_ conformance.SlowLink     = link{}
)

// New returns an adapter of a new, empty store.
func New() *Store { return &Store{Store: memory.NewStore()} }

// NewCandidate returns an elector on its own connection, named after its ID.
func (s *Store) NewCandidate(t testing.TB, opts election.Options) (*election.Elector, conformance.Link, error) {
	if opts.ID == "" {
		opts.ID = opts.WithDefaults().ID
	}
	var b election.Backend = s.Connect(opts.ID)
	if s.Wrap != nil {
		b = s.Wrap(b)
	}
	el, err := election.New(b, opts)
	return el, link{s.Store, opts.ID}, err
}

// NewSharedSession returns a shared session on a connection of its own,
// named "shared-" and a number.
func (s *Store) NewSharedSession(t testing.TB, o election.SessionOptions) (*election.SharedSession, conformance.Link, error) {
	name := fmt.Sprintf("shared-%d", s.sessions.Add(1))
	var b election.Backend = s.Connect(name)
	if s.Wrap != nil {
		b = s.Wrap(b)
	}
	ss, err := election.NewSharedSession(b, o)
	return ss, link{s.Store, name}, err
}

// Remove expires the leader's session, or deletes its record.
func (s *Store) Remove(t testing.TB, resource string, what conformance.Removal) {
	var ok bool
	if what == conformance.RemoveRecord {
		ok = s.DeleteRecord(resource)
	} else {
		ok = s.Expire(resource)
	}
	if !ok {
		t.Fatalf("memorytest: no leader of %q to remove", resource)
	}
}

type link struct {
	store *memory.Store
	name  string
}

func (l link) Cut()  { l.store.Cut(l.name) }
func (l link) Heal() { l.store.Heal(l.name) }

func (l link) DelayReplies(d time.Duration) { l.store.Delay(l.name, d) }
