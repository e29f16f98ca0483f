package consul

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"go.uber.org/goleak"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
)

// traffic counts the requests of a client, the blocking ones in flight, and
// the connections it opened.
type traffic struct {
	next        http.RoundTripper
	requests    atomic.Int64
	blocking    atomic.Int64 // blocking queries in flight
	maxBlocking atomic.Int64
	dials       atomic.Int64
	transport   *http.Transport
}

// settle closes the idle connections, and checks that no goroutine other
// than those in ignore is left.
func (c *traffic) settle(t *testing.T, ignore goleak.Option) {
	t.Helper()
	c.transport.CloseIdleConnections()
	goleak.VerifyNone(t, ignore)
}

func (c *traffic) RoundTrip(r *http.Request) (*http.Response, error) {
	c.requests.Add(1)
	if r.URL.Query().Has("index") {
		n := c.blocking.Add(1)
		defer c.blocking.Add(-1)
		for m := c.maxBlocking.Load(); n > m && !c.maxBlocking.CompareAndSwap(m, n); m = c.maxBlocking.Load() {
		}
	}
	return c.next.RoundTrip(r)
}

// countingClient returns a client of srv whose traffic is counted.
func countingClient(t *testing.T, srv *testserver.ConsulServer) (*api.Client, *traffic) {
	t.Helper()
	c := &traffic{}
	d := &net.Dialer{}
	tr := &http.Transport{MaxIdleConnsPerHost: 16, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c.dials.Add(1)
		return d.DialContext(ctx, network, addr)
	}}
	c.next, c.transport = tr, tr
	client, err := api.NewClient(&api.Config{Address: srv.Addr, HttpClient: &http.Client{Transport: c}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return client, c
}

// holdKeys makes session hold the default key of every resource, with the
// record of leader id+resource, in transactions of 64 operations.
func holdKeys(t *testing.T, c *api.Client, session, id string, resources []string) {
	t.Helper()
	for len(resources) > 0 {
		n := min(len(resources), 64)
		var ops api.TxnOps
		for _, r := range resources[:n] {
			ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVLock, Key: DefaultKey(r), Session: session, Value: encodeRecord(id+r, nil, 0)}})
		}
		ok, resp, _, err := c.Txn().Txn(ops, nil)
		if err != nil || !ok {
			t.Fatalf("lock keys: %v %v", err, resp)
		}
		resources = resources[n:]
	}
}

func newTestSession(t *testing.T, c *api.Client) string {
	t.Helper()
	id, _, err := c.Session().Create(&api.SessionEntry{TTL: "60s", LockDelay: time.Nanosecond, Behavior: api.SessionBehaviorRelease}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// handOver moves key from session from to session to, with the record of
// leader id, in one transaction, and returns the term of the new holder.
func handOver(t *testing.T, c *api.Client, key, from, to, id string) uint64 {
	t.Helper()
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVUnlock, Key: key, Session: from}},
		{KV: &api.KVTxnOp{Verb: api.KVLock, Key: key, Session: to, Value: encodeRecord(id, nil, 0)}},
	}
	ok, resp, _, err := c.Txn().Txn(ops, nil)
	if err != nil || !ok {
		t.Fatalf("hand over %s: %v %v", key, err, resp)
	}
	return resp.Results[1].KV.ModifyIndex
}

// promptly bounds the time a change takes to reach the Watch calls waiting
// for it, from the end of the write.
const promptly = 100 * time.Millisecond

// watcher is a Watch caller that loops as the engine's leaders do, and
// reports every record whose revision changed.
func watcher(ctx context.Context, wg *sync.WaitGroup, b *Backend, resource string, rec election.Record, wait time.Duration, seen chan<- election.Record) {
	defer wg.Done()
	for ctx.Err() == nil {
		wctx, cancel := context.WithTimeout(ctx, wait+2*time.Second)
		r, err := b.Watch(wctx, resource, rec.Revision, wait)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				seen <- election.Record{LeaderID: "error: " + err.Error()}
			}
			return
		}
		if r.Revision != rec.Revision {
			seen <- r
		}
		rec = r
	}
}

// TestWatchSharesOneKey: 1,000 concurrent Watch calls of one key send one
// blocking query, and all learn of a change at once, with the new holder's
// record.
// With Handoff the key's recursive reads are shared the same way.
func TestWatchSharesOneKey(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	for _, handoff := range []bool{false, true} {
		t.Run(fmt.Sprintf("handoff=%v", handoff), func(t *testing.T) { testWatchSharesOneKey(t, srv, handoff) })
	}
}

func testWatchSharesOneKey(t *testing.T, srv *testserver.ConsulServer, handoff bool) {
	one := fmt.Sprintf("one-%v", handoff)
	client, tr := countingClient(t, srv)
	ignore := goleak.IgnoreCurrent()
	b, err := NewBackend(client, Options{Handoff: handoff})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s1, s2 := newTestSession(t, client), newTestSession(t, client)
	holdKeys(t, client, s1, "old-", []string{one})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec, err := b.Watch(ctx, one, 0, 0)
	if err != nil || rec.Session != s1 {
		t.Fatalf("Watch(0) = %+v, %v", rec, err)
	}

	const callers = 1000
	seen := make(chan election.Record, callers)
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go watcher(ctx, &wg, b, one, rec, 30*time.Second, seen)
	}
	time.Sleep(500 * time.Millisecond)
	if n := tr.blocking.Load(); n != 1 {
		t.Errorf("%d blocking queries in flight for %d callers of one key, want 1", n, callers)
	}
	term := handOver(t, client, DefaultKey(one), s1, s2, "new")
	changed := time.Now()
	for i := range callers {
		select {
		case r := <-seen:
			if r.Session != s2 || r.LeaderID != "new" || r.Term != term || r.Revision != term {
				t.Fatalf("caller %d saw %+v, want session %s, leader new, term %d", i, r, s2, term)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%d of %d callers saw the change", i, callers)
		}
	}
	took := time.Since(changed)
	t.Logf("%d callers: at most %d blocking queries in flight, %d requests, %d connections; all saw the change within %v",
		callers, tr.maxBlocking.Load(), tr.requests.Load(), tr.dials.Load(), took.Round(time.Millisecond))
	if took > slowdown*promptly {
		t.Errorf("the change took %v to reach every caller", took)
	}
	if m := tr.maxBlocking.Load(); m > 2 {
		t.Errorf("at most %d blocking queries in flight, want 1 (2 around the change)", m)
	}
	cancel()
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	tr.settle(t, ignore)
}

// TestWatchManyKeysShareOneListing: 2,000 resources watched by leader-like
// callers are served by a recursive read: a few queries in flight, at most
// 10 connections, at most 2 requests a second while nothing changes, and a
// change of one key reaches its callers at once with its record.
func TestWatchManyKeysShareOneListing(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	client, tr := countingClient(t, srv)
	ignore := goleak.IgnoreCurrent()
	b, err := NewBackend(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 2000
	resources := make([]string, n)
	for i := range resources {
		resources[i] = fmt.Sprintf("r%04d", i)
	}
	s1, s2 := newTestSession(t, client), newTestSession(t, client)
	holdKeys(t, client, s1, "old-", resources)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	recs := make([]election.Record, n)
	for i, r := range resources {
		if recs[i], err = b.Watch(ctx, r, 0, 0); err != nil || recs[i].Session != s1 || recs[i].LeaderID != "old-"+r {
			t.Fatalf("Watch(%s, 0) = %+v, %v", r, recs[i], err)
		}
	}

	seen := make([]chan election.Record, n)
	var wg sync.WaitGroup
	for i, r := range resources {
		seen[i] = make(chan election.Record, 4)
		wg.Add(1)
		go watcher(ctx, &wg, b, r, recs[i], 2*time.Second, seen[i])
	}
	// The calls that came before the listing started have a query of
	// their own, for one wait at most.
	time.Sleep(3 * time.Second)
	dials0, req0 := tr.dials.Load(), tr.requests.Load()
	const quiet = 6 * time.Second
	var inFlight int64
	for end := time.Now().Add(quiet); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		inFlight = max(inFlight, tr.blocking.Load())
	}
	rate := float64(tr.requests.Load()-req0) / quiet.Seconds()
	t.Logf("%d resources: %d connections while starting, %d blocking queries in flight at most (%d while starting), %.2f requests/s while nothing changes",
		n, dials0, inFlight, tr.maxBlocking.Load(), rate)
	if rate > 2 {
		t.Errorf("%.2f requests/s while nothing changes, want at most 2", rate)
	}
	if inFlight > 1 {
		t.Errorf("%d blocking queries in flight, want 1", inFlight)
	}
	for i := range seen {
		select {
		case r := <-seen[i]:
			t.Fatalf("caller of %s saw %+v while nothing changed", resources[i], r)
		default:
		}
	}

	for _, i := range []int{7, 1234} {
		term := handOver(t, client, DefaultKey(resources[i]), s1, s2, "new")
		changed := time.Now()
		select {
		case r := <-seen[i]:
			took := time.Since(changed)
			t.Logf("a change of %s reached its caller in %v", resources[i], took.Round(time.Millisecond))
			if r.Session != s2 || r.LeaderID != "new" || r.Term != term || r.Revision != term {
				t.Fatalf("caller of %s saw %+v, want session %s, leader new, term %d", resources[i], r, s2, term)
			}
			if took > slowdown*promptly {
				t.Errorf("the change took %v to reach its caller", took)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the caller of %s did not see its change", resources[i])
		}
	}
	time.Sleep(200 * time.Millisecond)
	for i := range seen {
		select {
		case r := <-seen[i]:
			t.Errorf("caller of %s saw %+v, which did not change", resources[i], r)
		default:
		}
	}
	if d := tr.dials.Load(); d > 10 {
		t.Errorf("%d connections opened, want at most 10", d)
	}
	t.Logf("%d connections in all, %d requests in all", tr.dials.Load(), tr.requests.Load())
	cancel()
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	tr.settle(t, ignore)
}

// TestWatchCallersKeepTheirOwnWait: a call that joins a shared read still
// returns at its own wait, or when its own ctx ends, without cancelling the
// read for the others; the read is cancelled once no call waits for it, and
// Close ends shared reads, leaving their callers to read on their own.
func TestWatchCallersKeepTheirOwnWait(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	client, tr := countingClient(t, srv)
	ignore := goleak.IgnoreCurrent()
	b, err := NewBackend(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s1, s2 := newTestSession(t, client), newTestSession(t, client)
	holdKeys(t, client, s1, "old-", []string{"one"})
	ctx := context.Background()
	rec, err := b.Watch(ctx, "one", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		r   election.Record
		err error
		at  time.Duration
	}
	began := time.Now()
	call := func(ctx context.Context, wait time.Duration) chan result {
		ch := make(chan result, 1)
		go func() {
			r, err := b.Watch(ctx, "one", rec.Revision, wait)
			ch <- result{r, err, time.Since(began)}
		}()
		return ch
	}
	long := call(ctx, 30*time.Second)
	time.Sleep(100 * time.Millisecond)
	short := call(ctx, 300*time.Millisecond)
	cctx, cancel := context.WithCancel(ctx)
	cancelled := call(cctx, 30*time.Second)
	time.Sleep(100 * time.Millisecond)
	cancel()
	if r := <-cancelled; r.err == nil || r.at > time.Second {
		t.Errorf("a call whose ctx ended returned %+v", r)
	}
	if r := <-short; r.err != nil || r.r.Revision != rec.Revision || r.r.Session != s1 || r.r.Term != rec.Term || r.at > 2*time.Second {
		t.Errorf("a call of a 300ms wait returned %+v, want the unchanged record %+v within 2s", r, rec)
	}
	if n := tr.blocking.Load(); n != 1 {
		t.Errorf("%d blocking queries in flight after two calls left, want the first's", n)
	}
	term := handOver(t, client, DefaultKey("one"), s1, s2, "new")
	select {
	case r := <-long:
		if r.err != nil || r.r.Term != term || r.r.Session != s2 {
			t.Errorf("the first call returned %+v, want term %d of %s", r, term, s2)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first call did not see the change")
	}
	if tr.maxBlocking.Load() != 1 {
		t.Errorf("%d blocking queries in flight at most, want 1", tr.maxBlocking.Load())
	}

	// The last caller leaving cancels the read.
	rec, _ = b.Watch(ctx, "one", 0, 0)
	cctx, cancel = context.WithCancel(ctx)
	gone := call(cctx, 30*time.Second)
	time.Sleep(100 * time.Millisecond)
	cancel()
	<-gone
	waitFor(t, "the read to be cancelled", func() bool { return tr.blocking.Load() == 0 })

	// Close ends the shared read; its caller then reads on its own.
	waiting := call(ctx, 2*time.Second)
	time.Sleep(100 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if r := <-waiting; r.err != nil || r.r.Revision != rec.Revision {
		t.Errorf("a call waiting during Close returned %+v", r)
	}
	tr.settle(t, ignore)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(waitForLimit); !ok(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("no %s within %v", what, waitForLimit)
		}
	}
}

// waitForLimit is how long waitFor waits.
const waitForLimit = 5 * time.Second

// TestOwnedTransportBoundsConnections: a backend that creates its client,
// from the environment or from a URL, bounds its connections, except with
// Handoff, and has its shared sessions acquire through half of them at a
// time.
func TestOwnedTransportBoundsConnections(t *testing.T) {
	open := map[string]func(handoff bool) (*Backend, error){
		"NewBackend": func(handoff bool) (*Backend, error) { return NewBackend(nil, Options{Handoff: handoff}) },
		"OpenBackend": func(handoff bool) (*Backend, error) {
			u := &url.URL{Scheme: Scheme, Host: "127.0.0.1:8500", RawQuery: fmt.Sprintf("handoff=%v", handoff)}
			return OpenBackend(context.Background(), u, election.Options{})
		},
	}
	for name, handoff := range map[string]bool{"NewBackend": false, "NewBackend Handoff": true, "OpenBackend": false, "OpenBackend Handoff": true} {
		b, err := open[strings.TrimSuffix(name, " Handoff")](handoff)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want := OwnedMaxConns
		if handoff {
			want = 0
		}
		if got := b.owned.MaxConnsPerHost; got != want {
			t.Errorf("%s: MaxConnsPerHost = %d, want %d", name, got, want)
		}
		if got := b.MaxAcquiring(); got != want/2 {
			t.Errorf("%s: MaxAcquiring() = %d, want %d", name, got, want/2)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A client passed in is the caller's to bound.
	c, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewBackend(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := b.MaxAcquiring(); got != 0 {
		t.Errorf("a client passed in: MaxAcquiring() = %d, want 0", got)
	}
	_ = b.Close()
}

// TestWatchListRefused: a token that may not list the keys' common prefix
// (acl.enable_key_list_policy) watches each key on its own, and still sees
// every change.
func TestWatchListRefused(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{ACL: true, HCL: `acl { enable_key_list_policy = true }`})
	client, tr := countingClient(t, srv)
	mgmt, err := api.NewClient(&api.Config{Address: srv.Addr, Token: srv.ManagementToken, HttpClient: &http.Client{Transport: tr.next}})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := mgmt.ACL().PolicyCreate(&api.ACLPolicy{Name: "kl", Rules: `key_prefix "service/kl-" { policy = "write" }`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := mgmt.ACL().TokenCreate(&api.ACLToken{Policies: []*api.ACLTokenPolicyLink{{ID: p.ID}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ignore := goleak.IgnoreCurrent()
	b, err := NewBackend(client, Options{Token: tok.SecretID})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 2 * ListThreshold
	resources := make([]string, n)
	for i := range resources {
		resources[i] = fmt.Sprintf("kl-%02d", i)
	}
	s1, s2 := newTestSession(t, mgmt), newTestSession(t, mgmt)
	holdKeys(t, mgmt, s1, "old-", resources)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make([]chan election.Record, n)
	var wg sync.WaitGroup
	for i, r := range resources {
		rec, err := b.Watch(ctx, r, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		seen[i] = make(chan election.Record, 4)
		wg.Add(1)
		go watcher(ctx, &wg, b, r, rec, 5*time.Second, seen[i])
	}
	time.Sleep(500 * time.Millisecond)
	for _, i := range []int{1, n - 1} {
		term := handOver(t, mgmt, DefaultKey(resources[i]), s1, s2, "new")
		select {
		case r := <-seen[i]:
			if r.Session != s2 || r.Term != term {
				t.Fatalf("caller of %s saw %+v, want term %d of %s", resources[i], r, term, s2)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("the caller of %s did not see its change", resources[i])
		}
	}
	if m := tr.maxBlocking.Load(); m < n {
		t.Errorf("%d blocking queries in flight at most, want one per key (%d)", m, n)
	}
	cancel()
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	tr.settle(t, ignore)
}

// TestElectorsShareWatches: electors of many resources on one backend, two
// candidates each, elect one leader per resource through the shared reads,
// and a released resource passes to its other candidate.
//
// Release promises only that the releasing candidate holds off for its
// RetryInterval: a hold-off longer than the wait below leaves the other
// candidate, woken by the shared read, the only one that can take over,
// however late a loaded machine runs it.
func TestElectorsShareWatches(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	client, tr := countingClient(t, srv)
	b, err := NewBackend(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	const n = 3 * ListThreshold
	type cand struct {
		el     *election.Elector
		leader atomic.Bool
	}
	cands := make([][2]*cand, n)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range cands {
		for j := range 2 {
			c := &cand{}
			c.el, err = election.New(b, election.Options{Resource: fmt.Sprintf("el-%02d", i), ID: fmt.Sprintf("c%d", j), TTL: 10 * time.Second, RetryInterval: 2 * waitForLimit})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
				if l.IsLeader {
					c.leader.Store(true)
					<-ctx.Done()
					c.leader.Store(false)
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			cands[i][j] = c
		}
	}
	defer func() {
		for _, cs := range cands {
			for _, c := range cs {
				cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := c.el.Close(cctx); err != nil {
					t.Error(err)
				}
				ccancel()
			}
		}
	}()
	one := func(i int) (int, bool) {
		a, b := cands[i][0].leader.Load(), cands[i][1].leader.Load()
		if a == b {
			return 0, false
		}
		if a {
			return 0, true
		}
		return 1, true
	}
	waitFor(t, "one leader per resource", func() bool {
		for i := range cands {
			if _, ok := one(i); !ok {
				return false
			}
		}
		return true
	})
	time.Sleep(time.Second)
	inFlight := tr.blocking.Load()
	for _, i := range []int{0, n - 1} {
		l, _ := one(i)
		if err := cands[i][l].el.Release(ctx); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the other candidate to lead", func() bool { o, ok := one(i); return ok && o != l })
	}
	t.Logf("%d resources, 2 candidates each: %d blocking queries in flight", n, inFlight)
	if inFlight > 2 {
		t.Errorf("%d blocking queries in flight for %d resources, want 1 or 2", inFlight, n)
	}
}

// TestWatchListedKeyDeleted: a key missing from the recursive read is free,
// at the read's index.
func TestWatchListedKeyDeleted(t *testing.T) {
	srv := testserver.StartConsul(t, testserver.ConsulOptions{})
	client, tr := countingClient(t, srv)
	ignore := goleak.IgnoreCurrent()
	b, err := NewBackend(client, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 2 * ListThreshold
	resources := make([]string, n)
	for i := range resources {
		resources[i] = fmt.Sprintf("del-%02d", i)
	}
	s1 := newTestSession(t, client)
	holdKeys(t, client, s1, "old-", resources)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make([]chan election.Record, n)
	recs := make([]election.Record, n)
	var wg sync.WaitGroup
	for i, r := range resources {
		if recs[i], err = b.Watch(ctx, r, 0, 0); err != nil {
			t.Fatal(err)
		}
		seen[i] = make(chan election.Record, 4)
		wg.Add(1)
		go watcher(ctx, &wg, b, r, recs[i], 5*time.Second, seen[i])
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := client.KV().Delete(DefaultKey(resources[3]), nil); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-seen[3]:
		if !r.Free() || r.Revision <= recs[3].Revision {
			t.Fatalf("the caller of the deleted key saw %+v, want a free record after revision %d", r, recs[3].Revision)
		}
		now, err := b.Watch(ctx, resources[3], 0, 0)
		if err != nil || !now.Free() || r.Revision > now.Revision {
			t.Fatalf("a free record at %d, then a read of %+v, %v", r.Revision, now, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the caller of the deleted key saw nothing")
	}
	waitFor(t, "one blocking query in flight", func() bool { return tr.blocking.Load() == 1 })
	time.Sleep(100 * time.Millisecond)
	if m := tr.blocking.Load(); m != 1 {
		t.Errorf("%d blocking queries in flight, want 1", m)
	}
	cancel()
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	tr.settle(t, ignore)
}
