package leaderprom

import (
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// Pruning of the renewal times of sessions that no running term uses: a
// session not renewed for staleSession is dropped once the map holds
// pruneAt entries, at least minPrune.
const (
	staleSession = time.Hour
	minPrune     = 1024
)

// storeOps are the operations whose error counters exist from the start,
// at zero.
var storeOps = []election.Op{
	election.OpCreateSession, election.OpAcquire, election.OpRenew, election.OpRelease,
	election.OpWatch, election.OpRead, election.OpRaiseTermFloor,
}

// Observer returns the observer that feeds the metrics: attach it to every
// elector (election.Options.Observers) and shared session
// (election.SessionOptions.Observers) to observe. It is the same
// *election.Observer on every call, safe to share among any number of them.
func (m *Metrics) Observer() *election.Observer { return m.observer }

func (m *Metrics) newObserver() *election.Observer {
	for _, op := range storeOps {
		m.storeErrors.WithLabelValues(string(op)).Add(0)
	}
	return &election.Observer{
		TermStarted:    m.termStarted,
		TermEnded:      m.termEnded,
		Renewed:        m.renewed,
		StoreFailed:    m.storeFailed,
		HandlerOverran: m.handlerOverran,
	}
}

func (m *Metrics) termStarted(e election.TermStart) {
	k := termKey{e.Resource, e.Term}
	r := m.resourceLabel(e.Resource)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.running[k]; !dup {
		m.running[k] = e.Session
		m.isLeader.WithLabelValues(r).Inc()
	}
	if _, ok := m.sessions[e.Session]; !ok {
		// Not renewed yet: the session was created right before the
		// acquisition that started the term.
		m.sessions[e.Session] = renewalTime{at: time.Now(), guessed: true}
	}
	m.term.WithLabelValues(r).Set(float64(e.Term))
	m.started.WithLabelValues(r).Inc()
}

func (m *Metrics) termEnded(e election.TermEnd) {
	k := termKey{e.Resource, e.Term}
	r := m.resourceLabel(e.Resource)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.running[k]; !ok {
		return // forgotten (Forget) while it ran
	}
	delete(m.running, k)
	m.isLeader.WithLabelValues(r).Dec()
	m.ended.WithLabelValues(r, e.Cause.String()).Inc()
}

func (m *Metrics) renewed(e election.Renewal) {
	switch {
	case e.Err != nil:
		m.renewalByOut[2].Observe(e.Latency.Seconds())
		return
	case e.Late():
		m.renewalByOut[1].Observe(e.Latency.Seconds())
	default:
		m.renewalByOut[0].Observe(e.Latency.Seconds())
	}
	if e.Session == "" {
		return
	}
	sent := time.Now().Add(-e.Latency)
	m.mu.Lock()
	defer m.mu.Unlock()
	if last := m.sessions[e.Session]; last.guessed || sent.After(last.at) {
		m.sessions[e.Session] = renewalTime{at: sent}
	}
	if len(m.sessions) >= m.pruneAt {
		m.pruneSessions()
	}
}

// pruneSessions drops the renewal times of the sessions that no running
// term uses and that were not renewed for staleSession. It holds m.mu.
func (m *Metrics) pruneSessions() {
	inUse := make(map[string]bool, len(m.running))
	for _, s := range m.running {
		inUse[s] = true
	}
	cutoff := time.Now().Add(-staleSession)
	for s, rn := range m.sessions {
		if !inUse[s] && rn.at.Before(cutoff) {
			delete(m.sessions, s)
		}
	}
	m.pruneAt = max(minPrune, 2*len(m.sessions))
}

func (m *Metrics) storeFailed(e election.StoreFailure) {
	m.storeErrors.WithLabelValues(string(e.Op)).Inc()
}

func (m *Metrics) handlerOverran(e election.HandlerOverrun) {
	k := termKey{e.Resource, e.Term}
	r := m.resourceLabel(e.Resource)
	m.mu.Lock()
	defer m.mu.Unlock()
	_, seen := m.overran[k]
	switch {
	case e.Returned:
		if seen {
			delete(m.overran, k)
			m.overrunning.WithLabelValues(r).Dec()
		}
	case !seen:
		m.overran[k] = struct{}{}
		m.overruns.WithLabelValues(r).Inc()
		m.overrunning.WithLabelValues(r).Inc()
	}
}
