package leaderprom

import "github.com/prometheus/client_golang/prometheus"

// Forget removes the series of resource, for a process that no longer
// campaigns for it: call it after closing its elector, so that a process
// whose resources come and go (shards moving between processes) does not
// keep the series of every resource it ever led. With a grouping
// Options.ResourceLabel it removes the series of resource's whole group.
// Should the resource be led here again, its counters start from zero,
// which rate() and increase() take as a counter reset. The renewal
// histogram and the store errors, which have no resource label, stay.
func (m *Metrics) Forget(resource string) {
	r := m.resourceLabel(resource)
	m.mu.Lock()
	defer m.mu.Unlock()
	// Terms still running (an elector not closed yet) are forgotten too,
	// so that their end does not bring back an is_leader of -1.
	for k := range m.running {
		if m.resourceLabel(k.resource) == r {
			delete(m.running, k)
		}
	}
	for k := range m.overran {
		if m.resourceLabel(k.resource) == r {
			delete(m.overran, k)
		}
	}
	l := prometheus.Labels{"resource": r}
	m.isLeader.Delete(l)
	m.term.Delete(l)
	m.started.Delete(l)
	m.ended.DeletePartialMatch(l)
	m.overruns.Delete(l)
	m.overrunning.Delete(l)
}
