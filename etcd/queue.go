package etcd

import (
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// queue is the candidates' keys of one election, by key, as a watch
// maintains them.
type queue map[string]*mvccpb.KeyValue

// leader returns the key that leads: the first by create revision; nil if
// the queue is empty.
func (q queue) leader() *mvccpb.KeyValue {
	var lead *mvccpb.KeyValue
	for _, kv := range q {
		if lead == nil || kv.CreateRevision < lead.CreateRevision {
			lead = kv
		}
	}
	return lead
}

// update applies a watched event of a candidate's key.
func (q queue) update(ev *clientv3.Event) {
	if ev.Type == mvccpb.DELETE {
		delete(q, string(ev.Kv.Key))
		return
	}
	q[string(ev.Kv.Key)] = ev.Kv
}

// offsetOf returns the term offset a watched event of an offset key
// leaves: none if the key was deleted.
func offsetOf(ev *clientv3.Event) (termOffset, error) {
	if ev.Type == mvccpb.DELETE {
		return termOffset{}, nil
	}
	return parseOffset(ev.Kv)
}
