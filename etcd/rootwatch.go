package etcd

import (
	"context"
	"errors"
	"fmt"
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
	b    *Backend
	root string // DefaultPrefixRoot + "/"

	// Guarded by b.mu.
	members map[string][]*hub // by prefix
	elects  map[string]*elect // by prefix, as of at; nil until loaded
	at      int64             // every event up to at is applied; 0 until loaded
	err     error             // why the watch fails right now
	waiting int               // Watch calls waiting on members
	idle    time.Time         // when waiting last dropped to zero
	denied  bool              // etcd refused the root watch: members watch alone
	loading bool              // a load's states are handed to the members
	stop    context.CancelFunc
	done    chan struct{} // closed when the running goroutine returns; nil if none
	rewatch context.CancelFunc
}

// elect is the queue of candidates' keys and the term offset of one
// election, as a group knows them.
type elect struct {
	queue  map[string]*mvccpb.KeyValue
	offset termOffset
	err    error // the offset key's value is invalid
}

func newRootWatch(b *Backend) *rootWatch {
	return &rootWatch{b: b, root: DefaultPrefixRoot + "/", members: map[string][]*hub{}}
}

// member reports whether the hub of resource under prefix is served by
// the group.
func member(resource, prefix string) bool { return prefix == DefaultPrefix(resource) }

// startLocked starts the group's watch unless it runs or was refused, and
// hands h the state the group knows of its election. b.mu is held.
func (g *rootWatch) startLocked(h *hub) {
	if g.done == nil && !g.denied {
		ctx, stop := context.WithCancel(context.Background())
		done := make(chan struct{})
		g.stop, g.done = stop, done
		go g.run(ctx, done)
	}
	g.syncLocked(h)
}

// syncLocked hands h the group's state of its election, and the group's
// error. b.mu is held.
func (g *rootWatch) syncLocked(h *hub) {
	err := g.err
	if g.elects != nil {
		e := g.elects[h.prefix]
		if err == nil && e != nil {
			err = e.err
		}
		h.updateLocked(e.state(h.prefix, g.at))
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
	g.elects, g.at = nil, 0
	if g.rewatch != nil {
		g.rewatch()
	}
}

// halt stops the watch, if it runs, and waits for it.
func (g *rootWatch) halt() {
	g.b.mu.Lock()
	stop, done := g.stop, g.done
	g.b.mu.Unlock()
	if done != nil {
		stop()
		<-done
	}
}

// idleNow reports whether no Watch call has waited for hubIdle.
func (g *rootWatch) idleNow() bool {
	g.b.mu.Lock()
	defer g.b.mu.Unlock()
	return g.waiting == 0 && time.Since(g.idle) >= hubIdle
}

// membersLocked calls f for each member hub. b.mu is held.
func (g *rootWatch) membersLocked(f func(h *hub)) {
	for _, hs := range g.members {
		for _, h := range hs {
			f(h)
		}
	}
}

// setErr records the group's error and hands it to the members.
func (g *rootWatch) setErr(err error) {
	g.b.mu.Lock()
	defer g.b.mu.Unlock()
	g.err = err
	g.membersLocked(g.syncLocked)
}

// run watches until ctx ends, the group is idle, or etcd refuses the
// watch, retrying after failures.
func (g *rootWatch) run(ctx context.Context, done chan struct{}) {
	for {
		again, err := g.follow(ctx)
		switch {
		case again:
			continue
		case err != nil && ctx.Err() == nil && errors.Is(err, election.ErrPermissionDenied):
			g.b.log.Warn("etcd refused a watch of every election under the prefix root; each election is watched on its own prefix",
				"root", g.root, "err", err)
			g.b.mu.Lock()
			g.denied = true
			g.b.mu.Unlock()
		case err != nil && ctx.Err() == nil:
			g.b.log.Warn("watch of the elections failed; retrying", "root", g.root, "err", err)
			g.setErr(err)
			t := time.NewTimer(g.b.retry)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
			if !g.idleNow() {
				continue
			}
		}
		g.b.mu.Lock()
		if ctx.Err() == nil && g.waiting > 0 && !g.denied {
			g.b.mu.Unlock()
			continue
		}
		g.stop()
		g.stop, g.done = nil, nil
		g.elects, g.at, g.err = nil, 0, nil
		// Calls still waiting start it again, or their own watches.
		g.membersLocked(func(h *hub) {
			h.err = nil
			h.wakeLocked()
		})
		close(done)
		g.b.mu.Unlock()
		return
	}
}

// follow runs one watch of the root, as hub.follow does of one prefix.
func (g *rootWatch) follow(ctx context.Context) (again bool, err error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	g.b.mu.Lock()
	g.rewatch = cancel
	g.b.mu.Unlock()
	defer func() {
		g.b.mu.Lock()
		g.rewatch = nil
		g.b.mu.Unlock()
	}()
	wch := g.b.client.Watch(wctx, g.root, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	tick := time.NewTicker(hubIdle / 4)
	defer tick.Stop()
	for {
		var (
			wr   clientv3.WatchResponse
			open bool
		)
		select {
		case <-ctx.Done():
			return false, nil
		case <-tick.C:
			if g.idleNow() {
				return false, nil
			}
			continue
		case wr, open = <-wch:
		}
		switch {
		case !open && ctx.Err() != nil:
			return false, nil
		case !open && wctx.Err() != nil:
			return true, nil // ended by resetLocked
		case !open:
			return false, fmt.Errorf("etcd: watch %s: the watch ended without a reason (client closed?)", g.root)
		case errors.Is(wr.Err(), rpctypes.ErrCompacted):
			g.b.log.Debug("watch resumed from a compacted revision; watching afresh",
				"root", g.root, "compacted", wr.CompactRevision)
			g.b.mu.Lock()
			g.elects, g.at = nil, 0
			g.b.mu.Unlock()
			return true, nil
		case wr.Err() != nil:
			return false, watchError("watch "+g.root, wr)
		case wr.Created:
			switch err := g.load(ctx); {
			case errors.Is(err, rpctypes.ErrCompacted):
				return true, nil // a later page was compacted away
			case err != nil:
				return false, err
			}
			continue
		}
		g.apply(wr.Events)
	}
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
		st := e.state(h.prefix, rev)
		st.sent = sent // a revision gone back is seen here
		h.updateLocked(st)
		h.setErrLocked(e.error())
	})
	g.loading = false
	return nil
}

// apply dispatches a batch of watched events to the elections their keys
// belong to, and hands the members whose election changed their state.
// Events at or before the revision the state was loaded at are already in
// it; a batch holds whole revisions.
func (g *rootWatch) apply(events []*clientv3.Event) {
	g.b.mu.Lock()
	defer g.b.mu.Unlock()
	if g.elects == nil {
		return // not loaded: the watch is being recreated
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
		changed[prefix] = true
		e := g.elects[prefix]
		if e == nil {
			e = &elect{queue: map[string]*mvccpb.KeyValue{}}
			g.elects[prefix] = e
		}
		switch {
		case !candidate:
			e.offset, e.err = termOffset{}, nil // deleted: no offset
			if ev.Type != mvccpb.DELETE {
				e.offset, e.err = parseOffset(ev.Kv)
			}
		case ev.Type == mvccpb.DELETE:
			delete(e.queue, string(ev.Kv.Key))
		default:
			e.queue[string(ev.Kv.Key)] = ev.Kv
		}
	}
	for prefix := range changed {
		e := g.elects[prefix]
		for _, h := range g.members[prefix] {
			h.updateLocked(e.state(prefix, g.at))
			h.setErrLocked(e.error())
		}
	}
}

// put adds kv, read under the root, to the election it belongs to.
func (g *rootWatch) put(elects map[string]*elect, kv *mvccpb.KeyValue) {
	prefix, candidate := g.electionOf(string(kv.Key))
	if prefix == "" {
		return
	}
	e := elects[prefix]
	if e == nil {
		e = &elect{queue: map[string]*mvccpb.KeyValue{}}
		elects[prefix] = e
	}
	if candidate {
		e.queue[string(kv.Key)] = kv
		return
	}
	e.offset, e.err = parseOffset(kv)
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
func (e *elect) state(prefix string, asOf int64) state {
	if e == nil {
		return stateOf(prefix, nil, termOffset{}, asOf)
	}
	var lead *mvccpb.KeyValue
	for _, kv := range e.queue {
		if lead == nil || kv.CreateRevision < lead.CreateRevision {
			lead = kv
		}
	}
	return stateOf(prefix, lead, e.offset, asOf)
}

// error returns why the election's state is unusable, or nil.
func (e *elect) error() error {
	if e == nil {
		return nil
	}
	return e.err
}
