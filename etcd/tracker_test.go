package etcd

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/election"
)

// tracker records what the handlers of one resource's electors are told,
// and fails the test if two of them lead at once or a term does not grow.
type tracker struct {
	t testing.TB

	mu        sync.Mutex
	leader    string // whose leader call is running; "" if none
	maxTerm   uint64
	seen      map[string]election.Leadership
	causes    map[string]error // why each candidate's last term ended
	tolerate  bool             // leadership was taken from outside: an overlap is expected
	changedCh chan struct{}
}

func newTracker(t testing.TB) *tracker {
	return &tracker{t: t, seen: map[string]election.Leadership{}, causes: map[string]error{}, changedCh: make(chan struct{})}
}

func (tr *tracker) changed() {
	close(tr.changedCh)
	tr.changedCh = make(chan struct{})
}

// handler is candidate id's handler: it leads until its context ends.
func (tr *tracker) handler(id string) election.Handler {
	return func(ctx context.Context, l election.Leadership) error {
		tr.mu.Lock()
		tr.seen[id] = l
		if l.IsLeader {
			if tr.leader != "" && !tr.tolerate {
				tr.t.Errorf("two leaders: %s started term %d while %s leads", id, l.Term, tr.leader)
			}
			if l.Term <= tr.maxTerm {
				tr.t.Errorf("%s leads with term %d after term %d", id, l.Term, tr.maxTerm)
			}
			tr.leader, tr.maxTerm = id, max(tr.maxTerm, l.Term)
		}
		tr.changed()
		tr.mu.Unlock()
		if !l.IsLeader {
			return nil
		}
		<-ctx.Done()
		tr.mu.Lock()
		if tr.leader == id {
			tr.leader = ""
		}
		tr.causes[id] = context.Cause(ctx)
		tr.changed()
		tr.mu.Unlock()
		return nil
	}
}

// waitFor waits until cond, called under the tracker's lock, holds.
func (tr *tracker) waitFor(within time.Duration, cond func() bool) bool {
	deadline := time.After(within)
	for {
		tr.mu.Lock()
		ok, ch := cond(), tr.changedCh
		tr.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

// waitLeader waits for a leader other than except and returns it.
func (tr *tracker) waitLeader(except string, within time.Duration) string {
	tr.t.Helper()
	var id string
	if !tr.waitFor(within, func() bool { id = tr.leader; return id != "" && id != except }) {
		tr.t.Fatalf("no leader other than %q within %v; seen: %+v", except, within, tr.snapshot())
	}
	return id
}

// waitAgreed waits until a candidate leads and every one of ids was last
// told so, without an error, and returns it.
func (tr *tracker) waitAgreed(ids []string, within time.Duration) string {
	tr.t.Helper()
	var id string
	agreed := func() bool {
		if id = tr.leader; id == "" {
			return false
		}
		for _, c := range ids {
			if l := tr.seen[c]; l.LeaderID != id || l.Err != nil {
				return false
			}
		}
		return true
	}
	if !tr.waitFor(within, agreed) {
		tr.t.Fatalf("no leader all of %v agree on within %v; leader %q, seen: %+v", ids, within, id, tr.snapshot())
	}
	return id
}

// waitSeen waits until candidate id was told that leader leads.
func (tr *tracker) waitSeen(id, leader string, within time.Duration) election.Leadership {
	tr.t.Helper()
	var l election.Leadership
	if !tr.waitFor(within, func() bool { l = tr.seen[id]; return l.LeaderID == leader && l.Err == nil }) {
		tr.t.Fatalf("%s was not told within %v that %s leads; last told %+v", id, within, leader, l)
	}
	return l
}

func (tr *tracker) cause(id string) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.causes[id]
}

func (tr *tracker) snapshot() map[string]election.Leadership {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := make(map[string]election.Leadership, len(tr.seen))
	for k, v := range tr.seen {
		out[k] = v
	}
	return out
}

// startElector starts an elector of opts on client with tr's handler, and
// closes it when t ends.
func startElector(t *testing.T, client *clientv3.Client, opts Options, tr *tracker) *election.Elector {
	t.Helper()
	el, err := New(client, opts)
	if err != nil {
		t.Fatalf("New %s: %v", opts.ID, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := el.Close(ctx); err != nil {
			t.Errorf("Close %s: %v", opts.ID, err)
		}
	})
	if err := el.Start(context.Background(), tr.handler(opts.ID)); err != nil {
		t.Fatalf("Start %s: %v", opts.ID, err)
	}
	return el
}

func opts(resource, id string) Options {
	return Options{Options: election.Options{Resource: resource, ID: id, Value: []byte("value-of-" + id), TTL: MinTTL}}
}

// foreign records a leader that is not one of the tracked electors: it
// starts leading with term, or stops.
func (tr *tracker) foreign(id string, term uint64, leading bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	defer tr.changed()
	if !leading {
		if tr.leader == id {
			tr.leader = ""
		}
		return
	}
	if tr.leader != "" {
		tr.t.Errorf("two leaders: %s started term %d while %s leads", id, term, tr.leader)
	}
	if term <= tr.maxTerm {
		tr.t.Errorf("%s leads with term %d after term %d", id, term, tr.maxTerm)
	}
	tr.leader, tr.maxTerm = id, max(tr.maxTerm, term)
}
