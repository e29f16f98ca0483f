package etcd

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
)

// The benchmarks measure latencies with the wall clock and report them as
// metrics; their ns/op is the cost of a whole round, setup included, and
// means little. Run them with, for example:
//
//	go test -run '^$' -bench . -benchtime 200x ./etcd/             # handover
//	go test -run '^$' -bench 'Failover|Idle' -benchtime 10x ./etcd/
//
// Unless ETCD_BENCH_FSYNC=1, etcd runs with --unsafe-no-fsync, so that the
// numbers measure the election rather than this machine's disk.

func benchServer(b *testing.B) *testserver.EtcdServer {
	b.Helper()
	var args []string
	if os.Getenv("ETCD_BENCH_FSYNC") != "1" {
		args = append(args, "--unsafe-no-fsync")
	}
	return startEtcd(b, args...)
}

// latencies collects durations and reports their percentiles.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	b.Helper()
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	at := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	b.ReportMetric(float64(at(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(at(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(s[len(s)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkHandover measures a graceful handover among 3 candidates: from
// the leader's Release (ours) or Resign (concurrency.Election) until the
// next candidate's handler runs (ours) or its Campaign returns. Each round,
// the candidate that gave up is replaced by a fresh one queued behind the
// others, so that two candidates always wait.
//
// Back to back, the next round starts at once; settled, 150 ms later, past
// the 100 ms in which etcd catches up a watch created from a past revision
// (as concurrency.Election's are), which until then receives no events.
func BenchmarkHandover(b *testing.B) {
	srv := benchServer(b)
	for _, pace := range []struct {
		name  string
		pause time.Duration
	}{{"back-to-back", 0}, {"settled", 150 * time.Millisecond}} {
		b.Run(pace.name+"/ours", func(b *testing.B) { benchHandoverOurs(b, srv, pace.pause) })
		b.Run(pace.name+"/concurrency.Election", func(b *testing.B) { benchHandoverConcurrency(b, srv, pace.pause) })
	}
}

type benchCandidate struct {
	id     string
	el     *election.Elector
	client *clientv3.Client
}

func benchHandoverOurs(b *testing.B, srv *testserver.EtcdServer, pause time.Duration) {
	resource := fmt.Sprintf("bench-handover-%d", pause.Milliseconds())
	var (
		mu      sync.Mutex
		leading = make(chan string, 16)
		ledAt   = map[string]time.Time{}
		told    = map[string]string{} // candidate -> leader it was told of
		cond    = sync.NewCond(&mu)
	)
	handler := func(id string) election.Handler {
		return func(ctx context.Context, l election.Leadership) error {
			now := time.Now()
			mu.Lock()
			told[id] = l.LeaderID
			if l.IsLeader {
				ledAt[id] = now
			}
			cond.Broadcast()
			mu.Unlock()
			if l.IsLeader {
				leading <- id
				<-ctx.Done()
			}
			return nil
		}
	}
	n := 0
	start := func() *benchCandidate {
		n++
		c := &benchCandidate{id: fmt.Sprintf("c%d", n), client: newClient(b, srv.Endpoint())}
		var err error
		if c.el, err = New(c.client, opts(resource, c.id)); err != nil {
			b.Fatal(err)
		}
		if err := c.el.Start(context.Background(), handler(c.id)); err != nil {
			b.Fatal(err)
		}
		return c
	}
	stop := func(c *benchCandidate) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := c.el.Close(ctx); err != nil {
			b.Fatal(err)
		}
		_ = c.client.Close()
	}
	// waitQueued waits until c was told of a leader: it has queued.
	waitQueued := func(c *benchCandidate) {
		mu.Lock()
		for told[c.id] == "" {
			cond.Wait()
		}
		mu.Unlock()
	}
	cands := map[string]*benchCandidate{}
	first := start()
	cands[first.id] = first
	leader := <-leading
	for range 2 {
		c := start()
		cands[c.id] = c
		waitQueued(c)
	}
	ctx := context.Background()
	var lat latencies
	b.ResetTimer()
	for range b.N {
		released := time.Now()
		if err := cands[leader].el.Release(ctx); err != nil {
			b.Fatal(err)
		}
		next := <-leading
		mu.Lock()
		lat = append(lat, ledAt[next].Sub(released))
		mu.Unlock()
		old := cands[leader]
		delete(cands, leader)
		leader = next
		stop(old)
		c := start()
		cands[c.id] = c
		waitQueued(c)
		time.Sleep(pause)
	}
	b.StopTimer()
	lat.report(b)
	for _, c := range cands {
		stop(c)
	}
}

func benchHandoverConcurrency(b *testing.B, srv *testserver.EtcdServer, pause time.Duration) {
	prefix := DefaultPrefix(fmt.Sprintf("bench-handover-concurrency-%d", pause.Milliseconds()))
	type won struct {
		e     *concurrency.Election
		at    time.Time
		again chan struct{} // tells the winner to campaign again once resigned
	}
	leading := make(chan won, 16)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i := range 3 {
		s, err := concurrency.NewSession(newClient(b, srv.Endpoint()), concurrency.WithTTL(int(MinTTL/time.Second)))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = s.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := concurrency.NewElection(s, prefix)
			again := make(chan struct{}, 1)
			for {
				if err := e.Campaign(ctx, fmt.Sprintf("c%d", i)); err != nil {
					return
				}
				leading <- won{e, time.Now(), again}
				select { // the benchmark resigns for it
				case <-again:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	cur := <-leading
	// Let the other two queue.
	admin := newClient(b, srv.Endpoint())
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err := admin.Get(ctx, prefix+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			b.Fatal(err)
		}
		if resp.Count == 3 {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d campaigners queued", resp.Count)
		}
		time.Sleep(10 * time.Millisecond)
	}
	var lat latencies
	b.ResetTimer()
	for range b.N {
		released := time.Now()
		if err := cur.e.Resign(ctx); err != nil {
			b.Fatal(err)
		}
		cur.again <- struct{}{} // queue again, behind the others
		cur = <-leading
		lat = append(lat, cur.at.Sub(released))
		time.Sleep(pause)
	}
	b.StopTimer()
	lat.report(b)
}

// keepaliveClock records when the last lease grant or keepalive that got
// an answer was sent.
type keepaliveClock struct {
	mu     sync.Mutex
	lastOK time.Time
}

func (k *keepaliveClock) answered(sent time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if sent.After(k.lastOK) {
		k.lastOK = sent
	}
}

func (k *keepaliveClock) install(cfg *clientv3.Config) {
	cfg.DialOptions = append(cfg.DialOptions, grpc.WithChainUnaryInterceptor(
		func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			sent := time.Now()
			err := invoker(ctx, method, req, reply, cc, opts...)
			if err == nil && method == "/etcdserverpb.Lease/LeaseGrant" {
				k.answered(sent)
			}
			return err
		}), grpc.WithChainStreamInterceptor(
		func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			s, err := streamer(ctx, desc, cc, method, opts...)
			if err != nil || method != "/etcdserverpb.Lease/LeaseKeepAlive" {
				return s, err
			}
			return &keepaliveStream{ClientStream: s, k: k}, nil
		}))
}

func (k *keepaliveClock) last() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.lastOK
}

type keepaliveStream struct {
	grpc.ClientStream
	k    *keepaliveClock
	sent time.Time
}

func (s *keepaliveStream) SendMsg(m any) error {
	s.sent = time.Now()
	return s.ClientStream.SendMsg(m)
}

func (s *keepaliveStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	if err == nil {
		s.k.answered(s.sent)
	}
	return err
}

// BenchmarkCrashFailover cuts the leader's connection, as if its process
// died, and measures from the start of its last answered lease keepalive
// (or grant) until another candidate's handler runs, at TTL 2 s. Each round takes
// about the TTL; the crashed candidate is replaced by a fresh one.
func BenchmarkCrashFailover(b *testing.B) {
	srv := benchServer(b)
	const resource = "bench-failover"
	type cand struct {
		id    string
		el    *election.Elector
		link  *testserver.Proxy
		clock *keepaliveClock
	}
	var (
		mu      sync.Mutex
		leading = make(chan string, 16)
		ledAt   = map[string]time.Time{}
	)
	n := 0
	cands := map[string]*cand{}
	start := func() {
		n++
		c := &cand{id: fmt.Sprintf("c%d", n), link: testserver.NewProxy(b, srv.Endpoint()), clock: &keepaliveClock{}}
		var err error
		if c.el, err = New(newClient(b, c.link.Addr(), c.clock.install), opts(resource, c.id)); err != nil {
			b.Fatal(err)
		}
		if err := c.el.Start(context.Background(), func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				mu.Lock()
				ledAt[c.id] = time.Now()
				mu.Unlock()
				leading <- c.id
				<-ctx.Done()
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		cands[c.id] = c
	}
	closeCand := func(c *cand) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.el.Close(ctx)
		c.link.Close()
	}
	for range 3 {
		start()
	}
	leader := <-leading
	var lat latencies
	b.ResetTimer()
	for range b.N {
		old := cands[leader]
		old.link.Cut()
		next := <-leading
		mu.Lock()
		lat = append(lat, ledAt[next].Sub(old.clock.last()))
		mu.Unlock()
		delete(cands, leader)
		leader = next
		old.link.Heal()
		closeCand(old)
		start()
	}
	b.StopTimer()
	lat.report(b)
	for _, c := range cands {
		closeCand(c)
	}
}

// BenchmarkIdleFollower counts what 3 followers of an idle leader send, per
// follower and second, over 10 s, at TTL 2 s (a keepalive every 667 ms) and
// the default WaitTime of 5 s.
func BenchmarkIdleFollower(b *testing.B) {
	srv := benchServer(b)
	const (
		resource  = "bench-idle"
		followers = 3
		window    = 10 * time.Second
	)
	tr := newTracker(b)
	startBench := func(id string, cfg ...func(*clientv3.Config)) {
		el, err := New(newClient(b, srv.Endpoint(), cfg...), opts(resource, id))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = el.Close(context.Background()) })
		if err := el.Start(context.Background(), tr.handler(id)); err != nil {
			b.Fatal(err)
		}
	}
	startBench("leader")
	if !tr.waitFor(5*time.Second, func() bool { return tr.leader == "leader" }) {
		b.Fatal("no leader")
	}
	counter := newRPCCounter()
	for i := range followers {
		startBench(fmt.Sprintf("f%d", i), counter.install)
	}
	if !tr.waitFor(5*time.Second, func() bool { return len(tr.seen) == followers+1 }) {
		b.Fatal("followers not following")
	}
	time.Sleep(time.Second) // their watches start and load the queue
	before := counter.snapshot()
	b.ResetTimer()
	for range b.N {
		time.Sleep(window)
	}
	b.StopTimer()
	sent := counter.since(before)
	seconds := float64(b.N) * window.Seconds() * followers
	per := func(keys ...string) float64 {
		total := 0
		for _, k := range keys {
			total += sent[k]
		}
		return float64(total) / seconds
	}
	b.ReportMetric(per("/etcdserverpb.Lease/LeaseKeepAlive send"), "keepalives/s")
	b.ReportMetric(per("/etcdserverpb.Watch/Watch open", "/etcdserverpb.Watch/Watch send"), "watch-msgs/s")
	other := 0
	for k, v := range sent {
		switch k {
		case "/etcdserverpb.Lease/LeaseKeepAlive send", "/etcdserverpb.Lease/LeaseKeepAlive open",
			"/etcdserverpb.Watch/Watch open", "/etcdserverpb.Watch/Watch send":
		default:
			other += v
			b.Logf("idle followers sent %s %d times", k, v)
		}
	}
	b.ReportMetric(float64(other)/seconds, "other-reqs/s")
}
