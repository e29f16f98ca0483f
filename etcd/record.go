package etcd

import (
	"bytes"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/consul-leader/consul-leader/election"
)

// encodeValue is what a candidate stores in its key: its ID, and its Value
// after a newline when there is one. An ID is printable text, so it holds no
// newline, and `etcdctl elect -l` prints the ID on the first line.
func encodeValue(id string, value []byte) string {
	if len(value) == 0 {
		return id
	}
	return id + "\n" + string(value)
}

// decodeValue reverses encodeValue. A value written by another client, for
// example concurrency.Election's Campaign, has no newline as a rule: all of
// it is then the leader's ID.
func decodeValue(raw []byte) (id string, value []byte) {
	i := bytes.IndexByte(raw, '\n')
	if i < 0 {
		return string(raw), nil
	}
	return string(raw[:i]), bytes.Clone(raw[i+1:])
}

// leaseID formats a lease ID as the candidates' keys and
// concurrency.Election name it: lower-case hex.
func leaseID(id int64) string { return strconv.FormatInt(id, 16) }

// freeRevision is the Record.Revision of an election without a leader.
const freeRevision = 1

// state is the leadership of one election as read at one etcd revision.
type state struct {
	rec election.Record
	// key is the leader's key, and created its create revision; empty and
	// zero when there is no leader.
	key     string
	created int64
	// asOf is an etcd revision at which rec was the current leadership.
	asOf int64
	// sent is when the request that read the state was sent; zero for a
	// state built from watched events (see hub.updateLocked).
	sent time.Time
}

// stateOf builds the state from the first key by create revision, or none,
// and the term offset, read under prefix at revision asOf.
//
// Record.Term is the leader key's create revision plus the offset (zero
// unless a term floor was raised). Record.Revision is 2×ModRevision of the
// leader's key, or freeRevision when there is no leader: the leader key's
// last write identifies who leads, what it published and its term (a raise
// of the offset leaves the current leader's term as it was), and an even
// number never equals freeRevision.
func stateOf(prefix string, kv *mvccpb.KeyValue, off termOffset, asOf int64) state {
	if kv == nil {
		return state{rec: election.Record{Revision: freeRevision}, asOf: asOf}
	}
	key := string(kv.Key)
	suffix := strings.TrimPrefix(key, prefix+"/")
	id, value := decodeValue(kv.Value)
	if id == "" {
		id = suffix // a foreign candidate that published nothing
	}
	session := "no-lease:" + suffix // a key put without a lease never expires
	if kv.Lease != 0 {
		session = leaseID(kv.Lease)
	}
	return state{
		rec: election.Record{
			LeaderID: id,
			Value:    value,
			Term:     uint64(kv.CreateRevision) + off.at(kv.CreateRevision),
			Session:  session,
			Revision: 2 * uint64(kv.ModRevision),
		},
		key:     key,
		created: kv.CreateRevision,
		asOf:    asOf,
	}
}
