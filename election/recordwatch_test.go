package election_test

import "github.com/consul-leader/consul-leader/election"

// noRecordWatch, embedded beside a *memory.Conn, hides the connection's
// WatchRecord (of two at the same depth, neither is promoted), so that a
// leader watches its record through Watch, which the wrapper overrides.
type noRecordWatch struct{}

func (noRecordWatch) WatchRecord(string, uint64, func(election.Record, error)) func() {
	panic("hidden by embedding")
}
