// Package health turns the events of electors into health checks: a
// liveness Check, unhealthy while a leader cannot renew its session, while
// a handler runs past the end of its term, or while the store cannot be
// reached; and a readiness handler that is ready only on the leader.
//
// A Check learns everything from an election.Observer: attach
// Check.Observer to the electors it watches (election.Options.Observers),
// and to their SharedSession if they share one
// (election.SessionOptions.Observers), whose renewals serve their terms.
// It sends no store request, and costs the electors one call per event.
package health

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// ErrUnhealthy is wrapped by every error of Check.Err.
var ErrUnhealthy = errors.New("health: unhealthy")

// Options configure a Check. The zero value of every field selects its
// documented default.
type Options struct {
	// TTL is the TTL of the electors checked (election.Options.TTL, or
	// their SharedSession's); the other defaults derive from it. Default:
	// election.DefaultTTL (15 s).
	TTL time.Duration
	// MaxRenewalAge is how old the last successful renewal of a leader's
	// session may be before the check fails: the leader is struggling to
	// keep its term. It applies once the check has seen a renewal of that
	// session, successful or not. Default: TTL/2. It must be less than
	// TTL - StepDownMargin(TTL), when the term ends without a renewal.
	MaxRenewalAge time.Duration
	// MaxOverrun is how long a handler's leader call may keep running
	// after its term ended before the check fails: past it, another
	// candidate may lead while this handler still acts. An elector reports
	// an overrun at a check every TTL from the start of the call, so the
	// check fails at the first report past MaxOverrun. Default:
	// StepDownMargin(TTL), the time between the end of a term and the
	// store's end of its session.
	MaxOverrun time.Duration
	// MaxUnreachable is how long every store request of an elector (or of
	// a shared session) may keep failing before the check fails. Default:
	// TTL.
	MaxUnreachable time.Duration
}

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.TTL == 0 {
		o.TTL = election.DefaultTTL
	}
	if o.MaxRenewalAge == 0 {
		o.MaxRenewalAge = o.TTL / 2
	}
	if o.MaxOverrun == 0 {
		o.MaxOverrun = election.StepDownMargin(o.TTL)
	}
	if o.MaxUnreachable == 0 {
		o.MaxUnreachable = o.TTL
	}
	return o
}

// Validate reports the first invalid option, with defaults applied, as an
// *election.OptionError naming the field.
func (o Options) Validate() error {
	o = o.WithDefaults()
	for _, f := range []struct {
		name string
		v    time.Duration
	}{{"TTL", o.TTL}, {"MaxRenewalAge", o.MaxRenewalAge}, {"MaxOverrun", o.MaxOverrun}, {"MaxUnreachable", o.MaxUnreachable}} {
		if f.v < 0 {
			return &election.OptionError{Field: f.name, Rule: "must not be negative", Value: f.v.String()}
		}
	}
	if o.TTL < election.MinTTL || o.TTL > election.MaxTTL {
		return &election.OptionError{Field: "TTL", Rule: fmt.Sprintf("must be from %v to %v", election.MinTTL, election.MaxTTL), Value: o.TTL.String()}
	}
	if limit := o.TTL - election.StepDownMargin(o.TTL); o.MaxRenewalAge >= limit {
		return &election.OptionError{Field: "MaxRenewalAge", Rule: fmt.Sprintf("must be less than TTL - StepDownMargin(TTL) = %v, when a leader without renewals has stepped down already", limit), Value: o.MaxRenewalAge.String()}
	}
	return nil
}

// Check is a liveness check of the electors, and shared sessions, whose
// Observers include its Observer. It fails (Err) while:
//
//   - one of them leads, and the last successful renewal of its session is
//     older than MaxRenewalAge;
//   - a handler's leader call has kept running for more than MaxOverrun
//     after its term ended;
//   - every store request of one of them has failed for more than
//     MaxUnreachable.
//
// It is an http.Handler for a liveness probe. Its methods are safe for
// concurrent use.
type Check struct {
	opts Options
	obs  *election.Observer

	mu       sync.Mutex
	electors map[key]*state
	renewed  map[string]time.Time // the last successful renewal of each session seen renewing
}

// key names an elector, or a shared session (Resource and ID empty).
type key struct{ resource, id, backend string }

func keyOf(s election.Source) key { return key{s.Resource, s.ID, s.Backend} }

// state is what the check knows of one elector or shared session.
type state struct {
	leading      bool
	term         uint64
	session      string
	began        time.Time // of the term
	overrunSince time.Time // the end of a term whose leader call still runs; zero when none
	failingSince time.Time // the first failed store request since the last success; zero when none
}

// New returns a Check with options o, or an *election.OptionError.
func New(o Options) (*Check, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	c := &Check{opts: o.WithDefaults(), electors: map[key]*state{}, renewed: map[string]time.Time{}}
	c.obs = &election.Observer{
		TermStarted:    c.termStarted,
		TermEnded:      c.termEnded,
		Renewed:        c.renewal,
		StoreFailed:    c.storeFailed,
		StoreRecovered: c.storeRecovered,
		HandlerOverran: c.handlerOverran,
	}
	return c, nil
}

// Options returns the check's options, with defaults applied.
func (c *Check) Options() Options { return c.opts }

// Observer returns the observer to attach to every elector, and shared
// session, the check watches. It is the same on every call.
func (c *Check) Observer() *election.Observer { return c.obs }

// stateOf returns the state of s's elector, made on first use. It holds
// c.mu.
func (c *Check) stateOf(s election.Source) *state {
	k := keyOf(s)
	st := c.electors[k]
	if st == nil {
		st = &state{}
		c.electors[k] = st
	}
	return st
}

func (c *Check) termStarted(ev election.TermStart) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stateOf(ev.Source)
	st.leading, st.term, st.session, st.began = true, ev.Term, ev.Session, now
	st.overrunSince = time.Time{}
	st.failingSince = time.Time{} // the acquisition succeeded
}

func (c *Check) termEnded(ev election.TermEnd) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stateOf(ev.Source)
	if st.term == ev.Term {
		st.leading = false
	}
}

func (c *Check) renewal(ev election.Renewal) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	last, seen := c.renewed[ev.Session]
	if ev.Err == nil {
		c.renewed[ev.Session] = now.Add(-ev.Latency) // a renewal counts from when it was sent
		c.stateOf(ev.Source).failingSince = time.Time{}
	} else if !seen {
		c.renewed[ev.Session] = last // known, never renewed
	}
	c.forgetEnded()
}

// forgetEnded drops the renewals of sessions no elector leads on, so that
// the map does not grow with every session. It holds c.mu.
func (c *Check) forgetEnded() {
	if len(c.renewed) <= 2*len(c.electors)+8 {
		return
	}
	live := map[string]bool{}
	for _, st := range c.electors {
		if st.leading {
			live[st.session] = true
		}
	}
	for s := range c.renewed {
		if !live[s] {
			delete(c.renewed, s)
		}
	}
}

func (c *Check) storeFailed(ev election.StoreFailure) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stateOf(ev.Source)
	if st.failingSince.IsZero() {
		st.failingSince = now.Add(-ev.Latency)
	}
}

func (c *Check) storeRecovered(ev election.StoreRecovery) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stateOf(ev.Source).failingSince = time.Time{}
}

func (c *Check) handlerOverran(ev election.HandlerOverrun) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stateOf(ev.Source)
	if ev.Returned {
		st.overrunSince = time.Time{}
		return
	}
	st.overrunSince = now.Add(-ev.Overrun)
}

// Err returns nil while every elector and session the check watches is
// healthy, and otherwise an error wrapping ErrUnhealthy that says why, for
// the first problem found.
func (c *Check) Err() error {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, st := range c.electors {
		name := fmt.Sprintf("elector %q of %q (%s)", k.id, k.resource, k.backend)
		if k.resource == "" && k.id == "" {
			name = fmt.Sprintf("shared session (%s)", k.backend)
		}
		if !st.overrunSince.IsZero() {
			if d := now.Sub(st.overrunSince); d > c.opts.MaxOverrun {
				return fmt.Errorf("%w: %s: the handler of term %d still runs %v after the term ended (at most %v)", ErrUnhealthy, name, st.term, d, c.opts.MaxOverrun)
			}
		}
		if st.leading {
			if last, seen := c.renewed[st.session]; seen {
				last = later(last, st.began)
				if d := now.Sub(last); d > c.opts.MaxRenewalAge {
					return fmt.Errorf("%w: %s leads term %d, and its session was last renewed %v ago (at most %v)", ErrUnhealthy, name, st.term, d, c.opts.MaxRenewalAge)
				}
			}
		}
		if !st.failingSince.IsZero() {
			if d := now.Sub(st.failingSince); d > c.opts.MaxUnreachable {
				return fmt.Errorf("%w: %s has not reached its store for %v (at most %v)", ErrUnhealthy, name, d, c.opts.MaxUnreachable)
			}
		}
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ServeHTTP answers a liveness probe: 200 and "ok" while the check passes,
// 500 and the reason, in plain text, while it fails.
func (c *Check) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	if err := c.Err(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// LeaderHandler returns a readiness handler that is ready only on the
// leader: 200 and "leader" while el leads (el.IsLeader), 503 and "not
// leader" otherwise, in plain text. It sends no store request and takes no
// lock, so that a probe costs the elector nothing: route traffic that only
// the leader may serve with it.
func LeaderHandler(el *election.Elector) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !el.IsLeader() {
			http.Error(w, "not leader", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("leader\n"))
	})
}
