package etcd

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/election"
)

// defaultPage is how many keys one read of a group's initial load returns
// at most.
const defaultPage = 1000

// rootWatch follows every election under DefaultPrefixRoot with one watch of
// the root prefix, run by one goroutine, whatever the number of resources
// watched: the hubs of resources under their DefaultPrefix are its
// members and run no goroutine of their own. It keeps the queue and the
// term offset of every election under the root, loaded by a paginated read
// of the whole root at one revision, and dispatches each event to the
// election its key belongs to, updating the state of that election's hub.
//
// A root watch the client may not make (its role has rights on some
// elections' prefixes only) is refused by etcd with a permission error:
// the group then gives up for the backend's life, with a warning, and its
// members watch their own prefixes.
type rootWatch struct {
	watcher        // of the root
	root    string // DefaultPrefixRoot + "/"

	// Guarded by b.mu.
	waits                     // the calls waiting on members
	elects  map[string]*elect // by prefix, as of at; nil until loaded
	at      int64             // every event up to at is applied; 0 until loaded
	err     error             // why the watch fails right now
	denied  bool              // etcd refused the root watch: members watch alone
	loading bool              // a load's states are handed to the members
}

// elect is the queue of candidates' keys and the term offset of one
// election, as a group knows them.
type elect struct {
	queue keyList
	off   *electOffset // nil while the election has no term offset key, as most have none
}

// electOffset is the term offset of an election, as a group knows it.
type electOffset struct {
	offset termOffset
	err    error // the offset key's value is invalid
}

// setOffset records the term offset key's value, or the error it is.
func (e *elect) setOffset(o termOffset, err error) {
	switch {
	case o == termOffset{} && err == nil:
		e.off = nil
	case e.off == nil:
		e.off = &electOffset{o, err}
	default:
		e.off.offset, e.off.err = o, err
	}
}

// offset returns the election's term offset.
func (e *elect) offset() termOffset {
	if e.off == nil {
		return termOffset{}
	}
	return e.off.offset
}

func newRootWatch(b *Backend) *rootWatch {
	g := &rootWatch{root: DefaultPrefixRoot + "/"}
	g.watcher = watcher{b: b, count: &g.waits}
	return g
}

// span is the range of the group's watch: the root prefix.
func (g *rootWatch) span() (attr, name, key, end string) {
	return "root", g.root, g.root, clientv3.GetPrefixRangeEnd(g.root)
}

// member reports whether the hub of resource under prefix is served by
// the group.
func member(resource, prefix string) bool { return prefix == DefaultPrefix(resource) }

// startLocked starts the group's watch unless it runs or was refused, and
// hands h the state the group knows of its election. b.mu is held.
func (g *rootWatch) startLocked(h *hub) {
	if !g.denied {
		g.launchLocked(g)
	}
	g.syncLocked(h)
}

// syncLocked hands h the group's state of its election, and the group's
// error. b.mu is held.
func (g *rootWatch) syncLocked(h *hub) {
	err := g.err
	if g.elects != nil {
		e := g.elects[h.prefix]
		if err == nil {
			err = e.error()
		}
		h.updateLocked(e.state(g.at), time.Time{})
	}
	h.setErrLocked(err)
}

// resetLocked drops the group's state and ends its watch, which is created
// anew and reloads, unless a load is being handed to the members. b.mu is
// held.
func (g *rootWatch) resetLocked() {
	if g.loading {
		return
	}
	g.forgetLocked()
	g.rewatchLocked()
}

// forgetLocked drops the group's state, which the next watch loads anew.
// b.mu is held.
func (g *rootWatch) forgetLocked() {
	g.elects, g.at = nil, 0
}

// membersLocked calls f for each member hub. b.mu is held.
func (g *rootWatch) membersLocked(f func(h *hub)) {
	for _, h := range g.b.hubs {
		if h.member {
			f(h)
		}
	}
}

// memberLocked returns the member hub of the election under prefix, a
// prefix under the root; nil if none. The members are found among the
// backend's hubs, rather than kept by prefix: DefaultPrefix names one
// resource only. b.mu is held.
func (g *rootWatch) memberLocked(prefix string) *hub {
	name, ok := strings.CutPrefix(prefix, g.root)
	if !ok {
		return nil
	}
	if strings.Contains(name, "%2F") {
		name = strings.ReplaceAll(name, "%2F", "/")
	}
	if h := g.b.hubs[name]; h != nil && h.member && h.prefix == prefix {
		return h
	}
	return nil
}

// setErr records the group's error and hands it to the members.
func (g *rootWatch) setErr(err error) {
	g.b.mu.Lock()
	defer g.b.mu.Unlock()
	g.err = err
	g.membersLocked(g.syncLocked)
}

// failed records why the watch failed, and reports whether it is
// retried: not if etcd refused it, for good.
func (g *rootWatch) failed(err error) bool {
	if errors.Is(err, election.ErrPermissionDenied) {
		g.b.log.Warn("etcd refused a watch of every election under the prefix root; each election is watched on its own prefix",
			"root", g.root, "err", err)
		g.b.mu.Lock()
		g.denied = true
		g.b.mu.Unlock()
		return false
	}
	g.b.log.Warn("watch of the elections failed; retrying", "root", g.root, "err", err)
	g.setErr(err)
	return true
}

// stoppedLocked drops the group's state and wakes the members' waiting
// calls, which start it again, or their own watches, and ends their
// WatchRecord calls. b.mu is held.
func (g *rootWatch) stoppedLocked() {
	g.forgetLocked()
	g.err = nil
	g.membersLocked(func(h *hub) {
		h.err = nil
		h.wakeLocked()
		h.watchStoppedLocked()
	})
}

// created loads the state of every election once the watch of the root
// was created, as hub.created does for one prefix.
func (g *rootWatch) created(ctx context.Context) (again bool, err error) {
	switch err := g.load(ctx); {
	case errors.Is(err, rpctypes.ErrCompacted):
		return true, nil // a later page was compacted away
	case err != nil:
		return false, err
	}
	return false, nil
}

// load reads every key under the root, in pages of at most b.page keys,
// all at the revision of the first, and hands each member its state.
func (g *rootWatch) load(ctx context.Context) error {
	sent := time.Now()
	end := clientv3.GetPrefixRangeEnd(g.root)
	elects := map[string]*elect{}
	var rev int64
	for from := g.root; ; {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(int64(g.b.page))}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		rctx, cancel := context.WithTimeout(ctx, g.b.timeout)
		resp, err := g.b.client.Get(rctx, from, opts...)
		cancel()
		if err != nil {
			return storeError("read elections under "+g.root, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			g.put(elects, kv)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	g.b.mu.Lock()
	defer g.b.mu.Unlock()
	g.elects, g.at, g.err = elects, rev, nil
	g.loading = true
	g.membersLocked(func(h *hub) {
		e := elects[h.prefix]
		h.updateLocked(e.state(rev), sent) // a revision gone back is seen here
		h.setErrLocked(e.error())
	})
	g.loading = false
	return nil
}

// apply dispatches a batch of watched events to the elections their keys
// belong to, and hands the members whose election changed their state.
// Events at or before the revision the state was loaded at are already in
// it; a batch holds whole revisions.
func (g *rootWatch) apply(events []*clientv3.Event) error {
	g.b.mu.Lock()
	defer g.b.mu.Unlock()
	if g.elects == nil {
		return nil // not loaded: the watch is being recreated
	}
	from := g.at
	changed := map[string]bool{}
	for _, ev := range events {
		rev := ev.Kv.ModRevision
		if rev <= from {
			continue
		}
		g.at = max(g.at, rev)
		prefix, candidate := g.electionOf(string(ev.Kv.Key))
		if prefix == "" {
			continue // a key of no election
		}
		if h := g.memberLocked(prefix); h != nil {
			prefix = h.prefix // the hub's string, rather than a copy kept by elects
		}
		changed[prefix] = true
		e := electOf(g.elects, prefix)
		if candidate {
			e.queue.update(prefix, ev)
		} else {
			e.setOffset(offsetOf(ev))
		}
	}
	for prefix := range changed {
		if h := g.memberLocked(prefix); h != nil {
			e := g.elects[prefix]
			h.updateLocked(e.state(g.at), time.Time{})
			h.setErrLocked(e.error())
		}
	}
	return nil
}

// put adds kv, read under the root, to the election it belongs to.
func (g *rootWatch) put(elects map[string]*elect, kv *mvccpb.KeyValue) {
	prefix, candidate := g.electionOf(string(kv.Key))
	if prefix == "" {
		return
	}
	e := electOf(elects, prefix)
	if candidate {
		e.queue.put(candOf(prefix, kv))
		return
	}
	e.setOffset(parseOffset(kv))
}

// electOf returns the election of prefix in elects, adding it.
func electOf(elects map[string]*elect, prefix string) *elect {
	e := elects[prefix]
	if e == nil {
		e = &elect{}
		elects[prefix] = e
	}
	return e
}

// electionOf returns the prefix of the election a key under the root
// belongs to, as the watch of that election's prefix would see it: a
// candidate's key, prefix + "/" + more, or the term offset key; "" for a
// key of no election under its DefaultPrefix.
func (g *rootWatch) electionOf(key string) (prefix string, candidate bool) {
	rest, ok := strings.CutPrefix(key, g.root)
	if !ok {
		return "", false
	}
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		return g.root + rest[:i], true
	}
	if name, ok := strings.CutSuffix(rest, OffsetKeySuffix); ok && name != "" {
		return g.root + name, false
	}
	return "", false
}

// state is the leadership the queue shows at revision asOf: its first key
// by create revision leads. A nil elect has no candidate.
func (e *elect) state(asOf int64) state {
	if e == nil {
		return stateOf(nil, termOffset{}, asOf)
	}
	return stateOf(e.queue.leader(), e.offset(), asOf)
}

// error returns why the election's state is unusable, or nil.
func (e *elect) error() error {
	if e == nil || e.off == nil {
		return nil
	}
	return e.off.err
}
