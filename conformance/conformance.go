// Package conformance is the test suite every election backend must pass.
//
// A backend's tests call Run with a Config whose Open returns the store under
// test, running against a real server (see package testserver for local
// processes). The suite starts candidates, cuts their connections, delays
// the store's replies to them (on links that can: SlowLink), crashes and
// revokes them, and checks continuously, with a recorder of every handler
// call, that there is never more than one leader, that terms only grow, and
// that leadership moves within the bounds the store promises. On a store
// that implements SessionStore it runs the same checks on shared sessions:
// fifty resources led through one store session, every term of a session
// cut off or removed ending before another candidate leads any of them,
// resources released and failed independently, bad input refused,
// SharedSession.Close releasing everything at once, and, on a backend that
// implements election.RecordWatcher, its watch of a leader's record:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, conformance.Config{
//			Name: "mystore",
//			TTL:  2 * time.Second,
//			Open: func(t *testing.T) conformance.Store { return newStoreForTest(t) },
//		})
//	}
package conformance

import (
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// Store is a backend under test, opened for one test of the suite.
type Store interface {
	// NewCandidate returns a new, unstarted elector for opts with its own
	// connection to the store, and the Link that connection goes through.
	// It returns the constructor's error for invalid options. The suite
	// closes the elector; the store closes what it opened for the candidate
	// when t ends.
	NewCandidate(t testing.TB, opts election.Options) (*election.Elector, Link, error)

	// Remove takes the current leadership of resource away from outside the
	// electors: with RemoveSession it ends the leader's session (destroys
	// the Consul session, revokes the etcd lease); with RemoveRecord it
	// deletes the leader's key, leaving the session alive.
	Remove(t testing.TB, resource string, what Removal)
}

// SessionStore is a Store whose backend can share one store session among
// the electors of many resources (election.SessionSharer). The suite runs
// its tests of shared sessions on a store that implements it, and skips them
// on others, or when the backend it opens is not a SessionSharer.
type SessionStore interface {
	Store

	// NewSharedSession returns a new shared session for o, on a backend
	// with its own connection to the store, and the Link that connection
	// goes through: cutting it cuts off the session and every elector on
	// it. The suite makes the electors, with election.New on the session's
	// Backend and Options.Session set, and closes them and the session; the
	// store closes the backend when t ends. It returns the error of
	// election.NewSharedSession, an *election.OptionError with Field
	// "backend" for a backend that cannot share its sessions.
	NewSharedSession(t testing.TB, o election.SessionOptions) (*election.SharedSession, Link, error)
}

// Removal says what Store.Remove takes away.
type Removal int

const (
	// RemoveSession ends the leader's session in the store.
	RemoveSession Removal = iota
	// RemoveRecord deletes the leader's record, leaving its session alive.
	RemoveRecord
)

// String returns "record" or "session", for test logs.
func (r Removal) String() string {
	if r == RemoveRecord {
		return "record"
	}
	return "session"
}

// Link is one candidate's connection to the store.
type Link interface {
	// Cut makes every request of the candidate hang, without an error and
	// without an answer, as on a partitioned network.
	Cut()
	// Heal undoes Cut.
	Heal()
}

// SlowLink is a Link that can also make the store's replies late. The suite
// runs its test of late replies on a store whose links implement it
// (testserver.Proxy does), and skips it on others.
type SlowLink interface {
	Link
	// DelayReplies makes every reply of the store to the candidate arrive
	// d late, while its requests take effect in the store at once, as on a
	// slow network. A reply on its way when Cut is called still arrives.
	// DelayReplies(0) undoes it.
	DelayReplies(d time.Duration)
}

// Config describes a backend to Run.
type Config struct {
	// Name names the backend in test output.
	Name string

	// Open returns the store for one test. It is called at the start of
	// every test, inside Wrap.
	Open func(t *testing.T) Store

	// TTL is the TTL the suite gives its electors. Default:
	// election.DefaultTTL. Use the shortest the store allows, to keep the
	// suite fast.
	TTL time.Duration

	// ExpiryBound is the longest the store takes to free the leadership of a
	// session that is no longer renewed, counted from its last renewal.
	// Default: TTL. Consul, for one, waits up to twice the TTL and then
	// applies its lock-delay.
	ExpiryBound time.Duration

	// Slack is added to every time bound the suite checks, for scheduling
	// and network delays. Default: 2 s.
	Slack time.Duration

	// Parallel runs the suite's tests at once (each on resources of its
	// own), which shortens a run on a real server. Leave it off for a store
	// whose time is faked.
	Parallel bool

	// Wrap runs each test. Leave it nil for real servers; set it to
	// synctest.Test for an in-process backend whose time is faked.
	Wrap func(t *testing.T, f func(t *testing.T))
}

func (c Config) withDefaults() Config {
	if c.TTL == 0 {
		c.TTL = election.DefaultTTL
	}
	if c.ExpiryBound == 0 {
		c.ExpiryBound = c.TTL
	}
	if c.Slack == 0 {
		c.Slack = 2 * time.Second
	}
	if c.Wrap == nil {
		c.Wrap = func(t *testing.T, f func(t *testing.T)) { f(t) }
	}
	if c.Name == "" {
		c.Name = "backend"
	}
	return c
}
