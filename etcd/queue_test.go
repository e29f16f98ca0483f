package etcd

import (
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestKeyList: a keyList follows puts, replacements and deletions of keys
// as the map of a queue does, and leads with the first key by create
// revision.
func TestKeyList(t *testing.T) {
	kv := func(key string, created int64) *mvccpb.KeyValue {
		return &mvccpb.KeyValue{Key: []byte(key), CreateRevision: created, ModRevision: created}
	}
	put := func(k *mvccpb.KeyValue) *clientv3.Event { return &clientv3.Event{Type: mvccpb.PUT, Kv: k} }
	del := func(key string) *clientv3.Event {
		return &clientv3.Event{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: []byte(key)}}
	}
	var l keyList
	var q = queue{}
	step := func(ev *clientv3.Event) {
		t.Helper()
		l.update("p", ev)
		q.update("p", ev)
		if len(l) != len(q) {
			t.Fatalf("after %v %s: %d keys, the map %d", ev.Type, ev.Kv.Key, len(l), len(q))
		}
		for _, k := range l {
			if q[k.name] != k {
				t.Fatalf("after %v %s: key %s is %+v, the map's %+v", ev.Type, ev.Kv.Key, k.name, k, q[k.name])
			}
		}
		if ll, ql := l.leader(), q.leader(); (ll == nil) != (ql == nil) || ll != nil && *ll != *ql {
			t.Fatalf("after %v %s: leader %+v, the map's %+v", ev.Type, ev.Kv.Key, ll, ql)
		}
	}
	if l.leader() != nil {
		t.Fatalf("an empty list leads with %+v", l.leader())
	}
	step(put(kv("p/a", 5)))
	step(put(kv("p/b", 3)))
	step(put(kv("p/c", 9)))
	step(put(&mvccpb.KeyValue{Key: []byte("p/a"), CreateRevision: 5, ModRevision: 12})) // a new value of a key: replaced
	step(del("p/b"))                                                                    // the leader
	step(del("p/x"))                                                                    // no such key
	step(del("p/c"))
	step(del("p/a"))
	step(put(kv("p/d", 11)))
	if got := l.leader(); got == nil || got.name != "d" {
		t.Fatalf("leader %+v, want p/d", got)
	}
}
