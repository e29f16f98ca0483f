package etcd

import (
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// queue is the candidates' keys of one election, by name, as a watch
// maintains them.
type queue map[string]cand

// leader returns the key that leads: the first by create revision; nil if
// the queue is empty.
func (q queue) leader() *cand {
	var (
		lead  cand
		found bool
	)
	for _, c := range q {
		if !found || c.created < lead.created {
			lead, found = c, true
		}
	}
	if !found {
		return nil
	}
	return &lead
}

// update applies a watched event of a candidate's key under prefix.
func (q queue) update(prefix string, ev *clientv3.Event) {
	if ev.Type == mvccpb.DELETE {
		delete(q, string(nameOf(prefix, ev.Kv.Key)))
		return
	}
	c := candOf(prefix, ev.Kv)
	q[c.name] = c
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
// key, for which a map would cost several times the key itself.
type keyList []cand

// leader returns the key that leads: the first by create revision; nil if
// the list is empty.
func (l keyList) leader() *cand {
	var lead *cand
	for i := range l {
		if lead == nil || l[i].created < lead.created {
			lead = &l[i]
		}
	}
	return lead
}

// put adds c, or replaces the key's entry.
func (l *keyList) put(c cand) {
	for i := range *l {
		if (*l)[i].name == c.name {
			(*l)[i] = c
			return
		}
	}
	*l = append(*l, c)
}

// update applies a watched event of a candidate's key under prefix.
func (l *keyList) update(prefix string, ev *clientv3.Event) {
	if ev.Type != mvccpb.DELETE {
		l.put(candOf(prefix, ev.Kv))
		return
	}
	name := nameOf(prefix, ev.Kv.Key)
	for i := range *l {
		if (*l)[i].name == string(name) {
			last := len(*l) - 1
			(*l)[i] = (*l)[last]
			(*l)[last] = cand{}
			*l = (*l)[:last]
			if last == 0 {
				*l = nil
			}
			return
		}
	}
}
