package etcd

import (
	"strconv"
	"strings"

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
// it is then the leader's ID. The ID shares raw's memory.
func decodeValue(raw string) (id string, value []byte) {
	id, v, ok := strings.Cut(raw, "\n")
	if !ok {
		return raw, nil
	}
	return id, []byte(v)
}

// leaseID formats a lease ID as the candidates' keys and
// concurrency.Election name it: lower-case hex.
func leaseID(id int64) string { return strconv.FormatInt(id, 16) }

// freeRevision is the Record.Revision of an election without a leader.
const freeRevision = 1

// cand is what a queue keeps of a candidate's key: what the state of the
// election needs once the key leads, and the key's name, which identifies
// it among the election's keys.
type cand struct {
	name    string // the key's last segment: the key is prefix + "/" + name
	value   string // the key's value (see encodeValue)
	created int64  // the key's create revision
	mod     int64  // the key's mod revision
	lease   int64  // the lease the key is bound to; 0 if none
}

// candOf returns the candidate of kv, a key under prefix + "/".
func candOf(prefix string, kv *mvccpb.KeyValue) cand {
	return cand{
		name:    string(nameOf(prefix, kv.Key)),
		value:   string(kv.Value),
		created: kv.CreateRevision,
		mod:     kv.ModRevision,
		lease:   kv.Lease,
	}
}

// nameOf returns the last segment of key, a key under prefix + "/".
func nameOf(prefix string, key []byte) []byte {
	if len(key) > len(prefix) && key[len(prefix)] == '/' && string(key[:len(prefix)]) == prefix {
		return key[len(prefix)+1:]
	}
	return key
}

// session is Record.Session of the key, which is bound to a lease: the
// lease ID in hex, which the key's name is as a rule, and then shares.
func (c *cand) session() string {
	var buf [24]byte
	if string(strconv.AppendInt(buf[:0], c.lease, 16)) == c.name {
		return c.name
	}
	return leaseID(c.lease)
}

// state is the leadership of one election as read at one etcd revision.
type state struct {
	rec election.Record
	// created is the leader key's create revision; zero when there is no
	// leader.
	created int64
	// asOf is an etcd revision at which rec was the current leadership.
	asOf int64
}

// stateOf builds the state from the first key by create revision, or none,
// and the term offset, read at revision asOf. The record shares the
// candidate's strings.
//
// Record.Term is the leader key's create revision plus the offset (zero
// unless a term floor was raised). Record.Revision is 2×ModRevision of the
// leader's key, or freeRevision when there is no leader: the leader key's
// last write identifies who leads, what it published and its term (a raise
// of the offset leaves the current leader's term as it was), and an even
// number never equals freeRevision.
func stateOf(c *cand, off termOffset, asOf int64) state {
	if c == nil {
		return state{rec: election.Record{Revision: freeRevision}, asOf: asOf}
	}
	id, value := decodeValue(c.value)
	if id == "" {
		id = c.name // a foreign candidate that published nothing
	}
	session := "no-lease:" + c.name // a key put without a lease never expires
	if c.lease != 0 {
		session = c.session()
	}
	return state{
		rec: election.Record{
			LeaderID: id,
			Value:    value,
			Term:     uint64(c.created) + off.at(c.created),
			Session:  session,
			Revision: 2 * uint64(c.mod),
		},
		created: c.created,
		asOf:    asOf,
	}
}
