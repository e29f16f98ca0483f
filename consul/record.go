package consul

import (
	"encoding/json"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/election"
)

// recordFormat marks a key value written by this package.
const recordFormat = "consul-leader/1"

// recordValue is the value of the leadership key: a JSON document naming
// the leader, so that one read tells who leads, with what value, and how
// long Consul will refuse the key if the leader's session is invalidated.
// The key keeps it after a release, with no session: a free record.
type recordValue struct {
	Format      string `json:"format"`
	LeaderID    string `json:"leader"`
	Value       []byte `json:"value,omitempty"`
	LockDelayMS int64  `json:"lock_delay_ms"`
}

func encodeRecord(id string, value []byte, lockDelay time.Duration) []byte {
	// A struct of strings, bytes and an integer always marshals.
	b, _ := json.Marshal(recordValue{Format: recordFormat, LeaderID: id, Value: value, LockDelayMS: lockDelay.Milliseconds()})
	return b
}

// decodeRecord parses a key value written by this package; ok is false for
// any other value, such as one written by api.Lock or `consul lock`.
func decodeRecord(b []byte) (v recordValue, ok bool) {
	if len(b) == 0 || b[0] != '{' {
		return recordValue{}, false
	}
	if err := json.Unmarshal(b, &v); err != nil || v.Format != recordFormat || v.LeaderID == "" {
		return recordValue{}, false
	}
	return v, true
}

// observation is a key as read from Consul: the election record and what
// the key's value says about its last holder.
type observation struct {
	election.Record
	// lockDelay is the lock-delay of the session that last held the key, if
	// it was written by this package.
	lockDelay time.Duration
	known     bool
	// sent is when the request that returned the observation was sent, if
	// its Revision is an index Consul returned (see keyState.wentBack);
	// zero otherwise.
	sent time.Time
}

// observe turns a KV pair into the leadership record. index is the Consul
// index of the read, the revision of a missing key.
//
// The term of a leader is the key's ModifyIndex at its acquisition, a Raft
// index, plus the term offset then current (see RaiseTermFloor). Every
// write to Consul's state gets a higher index, and the offset never
// decreases, so a term is greater than any term before it, also after the
// key was deleted and created again. The key's LockIndex would not do: it counts acquisitions of
// the key as it exists now, and starts again at 1 when it is recreated.
func observe(pair *api.KVPair, index uint64) observation {
	return observeAt(pair, index, termOffset{})
}

// observeAt is observe with the key's term offset: the term of a holder is
// the key's ModifyIndex plus the offset of its acquisition.
func observeAt(pair *api.KVPair, index uint64, off termOffset) observation {
	if pair == nil {
		return observation{Record: election.Record{Revision: max(index, 1)}}
	}
	var o observation
	v, ok := decodeRecord(pair.Value)
	if ok {
		o.known = true
		o.lockDelay = time.Duration(v.LockDelayMS) * time.Millisecond
	}
	o.Revision = max(pair.ModifyIndex, 1)
	if pair.Session == "" {
		return o
	}
	o.Session = pair.Session
	o.Term = pair.ModifyIndex + off.at(pair.ModifyIndex)
	if ok {
		o.LeaderID, o.Value = v.LeaderID, v.Value
	} else {
		// Held by a foreign lock (api.Lock, `consul lock`): its session is
		// the only identity there is, and its value is the holder's own.
		o.LeaderID, o.Value = pair.Session, pair.Value
	}
	return o
}
