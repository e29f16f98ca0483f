package etcd

import (
	"bytes"

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

// keyList is a queue of the candidates' keys kept as a slice: the root
// watch keeps one per election under the root, most of which hold a single
// key, for which a map would cost several times the key's pointer.
type keyList []*mvccpb.KeyValue

// leader returns the key that leads: the first by create revision; nil if
// the list is empty.
func (l keyList) leader() *mvccpb.KeyValue {
	var lead *mvccpb.KeyValue
	for _, kv := range l {
		if lead == nil || kv.CreateRevision < lead.CreateRevision {
			lead = kv
		}
	}
	return lead
}

// put adds kv, or replaces the key's entry.
func (l *keyList) put(kv *mvccpb.KeyValue) {
	for i, old := range *l {
		if bytes.Equal(old.Key, kv.Key) {
			(*l)[i] = kv
			return
		}
	}
	*l = append(*l, kv)
}

// update applies a watched event of a candidate's key.
func (l *keyList) update(ev *clientv3.Event) {
	if ev.Type != mvccpb.DELETE {
		l.put(ev.Kv)
		return
	}
	for i, old := range *l {
		if bytes.Equal(old.Key, ev.Kv.Key) {
			last := len(*l) - 1
			(*l)[i] = (*l)[last]
			(*l)[last] = nil
			*l = (*l)[:last]
			return
		}
	}
}
