package etcd

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/election"
)

// BenchmarkSharedSessionScale measures one process leading many resources
// on one shared session: the time until every elector leads, the
// goroutines per resource the process then runs, and the requests its
// client sends per second at rest over 10 s, once every leader's watch
// runs (TTL 15 s: a keepalive every
// 5 s). ETCD_SCALE_RESOURCES sets the number of resources (default 1000).
// Run it without -race, whose detector allows 8128 goroutines:
//
//	ETCD_SCALE_RESOURCES=10000 go test -run '^$' -bench SharedSessionScale -benchtime 1x ./etcd/
func BenchmarkSharedSessionScale(b *testing.B) {
	n := 1000
	if s := os.Getenv("ETCD_SCALE_RESOURCES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	const window = 10 * time.Second
	srv := benchServer(b)
	counter := newRPCCounter()
	client := newClient(b, srv.Endpoint(), counter.install)
	if _, err := client.Get(context.Background(), "connect"); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		g0 := runtime.NumGoroutine()
		b.StartTimer()
		runScale(b, client, n, counter, window, g0)
	}
}

func runScale(b *testing.B, client *clientv3.Client, n int, counter *rpcCounter, window time.Duration, g0 int) {
	bk, err := NewBackend(client, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ss, err := election.NewSharedSession(bk, election.SessionOptions{TTL: 15 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	var (
		leading atomic.Int64
		all     = make(chan struct{})
		once    sync.Once
	)
	handler := func(ctx context.Context, l election.Leadership) error {
		if !l.IsLeader {
			return nil
		}
		if leading.Add(1) == int64(n) {
			once.Do(func() { close(all) })
		}
		<-ctx.Done()
		return nil
	}
	els := make([]*election.Elector, n)
	before := counter.snapshot()
	start := time.Now()
	for i := range els {
		el, err := New(client, Options{Options: election.Options{Resource: fmt.Sprintf("scale-%05d", i), ID: "a", Session: ss}})
		if err != nil {
			b.Fatal(err)
		}
		if err := el.Start(context.Background(), handler); err != nil {
			b.Fatal(err)
		}
		els[i] = el
	}
	select {
	case <-all:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d resources led after 5 minutes", leading.Load(), n)
	}
	took := time.Since(start)
	acquired := counter.since(before)
	// The leaders' watches start (one watch of the prefix root, and its
	// paginated read): wait until a whole second passes without a watch
	// request or a read.
	last, lastAt := counter.snapshot(), time.Now()
	for time.Since(lastAt) < time.Second {
		time.Sleep(100 * time.Millisecond)
		if now := counter.snapshot(); now["/etcdserverpb.Watch/Watch send"] != last["/etcdserverpb.Watch/Watch send"] || now.reads() != last.reads() {
			last, lastAt = now, time.Now()
		}
	}
	settled := lastAt.Sub(start)
	goroutines := runtime.NumGoroutine() - g0
	b.Logf("%d resources led after %v, watched after %v; %d goroutines (%.2f per resource); requests until all led: %v; until watched: %v",
		n, took.Round(time.Millisecond), settled.Round(time.Millisecond), goroutines, float64(goroutines)/float64(n), acquired, counter.since(before))
	b.Logf("goroutines by creator:\n%s", goroutinesByCreator())
	rest, cpu := counter.snapshot(), cpuTime()
	time.Sleep(window)
	idle, cpu := counter.since(rest), cpuTime()-cpu
	total := 0
	for _, v := range idle {
		total += v
	}
	b.Logf("requests at rest over %v: %v; CPU time of the process meanwhile: %v", window, idle, cpu.Round(time.Millisecond))
	b.ReportMetric(took.Seconds(), "s-to-lead-all")
	b.ReportMetric(settled.Seconds(), "s-to-watch-all")
	b.ReportMetric(float64(goroutines)/float64(n), "goroutines/resource")
	b.ReportMetric(float64(total)/window.Seconds(), "reqs/s-at-rest")
	b.ReportMetric(100*cpu.Seconds()/window.Seconds(), "%cpu-at-rest")
	b.StopTimer()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	closed := time.Now()
	var wg sync.WaitGroup
	for _, el := range els {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = el.Close(ctx)
		}()
	}
	wg.Wait()
	if err := ss.Close(ctx); err != nil {
		b.Error(err)
	}
	if err := bk.Close(); err != nil {
		b.Error(err)
	}
	b.Logf("closed in %v", time.Since(closed).Round(time.Millisecond))
}

var createdBy = regexp.MustCompile(`(?m)^created by (\S+)`)

// goroutinesByCreator counts the running goroutines by the function that
// created them, the most frequent first.
func goroutinesByCreator() string {
	buf := make([]byte, 64<<20)
	buf = buf[:runtime.Stack(buf, true)]
	counts := map[string]int{}
	for _, m := range createdBy.FindAllSubmatch(buf, -1) {
		counts[string(m[1])]++
	}
	names := make([]string, 0, len(counts))
	for k := range counts {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return counts[names[i]] > counts[names[j]] })
	var s strings.Builder
	for _, k := range names {
		if counts[k] >= 10 {
			fmt.Fprintf(&s, "  %6d %s\n", counts[k], k)
		}
	}
	return s.String()
}

// BenchmarkFollowersOneResource measures many followers of one resource in
// one process, each on a private session, all on one client: the
// goroutines per follower, the requests per second at rest over 5 s, and,
// when the leader closes, the time until the next leader's handler runs and
// until every follower was told the new leader. ETCD_FOLLOWERS sets the
// number of followers (default 1000). In "own-backends" each follower is
// made with New, and has a backend of its own; in "one-backend" they all
// run on one Backend. Run it without -race:
//
//	go test -run '^$' -bench FollowersOneResource -benchtime 1x ./etcd/
func BenchmarkFollowersOneResource(b *testing.B) {
	n := 1000
	if s := os.Getenv("ETCD_FOLLOWERS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			b.Fatal(err)
		}
	}
	for _, shared := range []bool{false, true} {
		name := "own-backends"
		if shared {
			name = "one-backend"
		}
		b.Run(name, func(b *testing.B) {
			srv := benchServer(b)
			for range b.N {
				runFollowers(b, srv.Endpoint(), n, shared)
			}
		})
	}
}

// told is what followers were told: the leader each was told last, and
// when.
type told struct {
	mu     sync.Mutex
	leader map[string]string
	led    map[string]time.Time // when each candidate's leader call ran
	change chan struct{}
}

func (t *told) handler(id string) election.Handler {
	return func(ctx context.Context, l election.Leadership) error {
		t.mu.Lock()
		t.leader[id] = l.LeaderID
		if l.IsLeader {
			t.led[id] = time.Now()
		}
		close(t.change)
		t.change = make(chan struct{})
		t.mu.Unlock()
		if l.IsLeader {
			<-ctx.Done()
		}
		return nil
	}
}

// wait waits up to d until cond holds of the leaders told, and returns when
// it first held.
func (t *told) wait(b *testing.B, d time.Duration, what string, cond func(map[string]string) bool) time.Time {
	timeout := time.After(d)
	for {
		t.mu.Lock()
		ok, ch := cond(t.leader), t.change
		t.mu.Unlock()
		if ok {
			return time.Now()
		}
		select {
		case <-ch:
		case <-timeout:
			b.Fatalf("%s: not within %v", what, d)
		}
	}
}

func runFollowers(b *testing.B, endpoint string, n int, shared bool) {
	const resource = "followed"
	tr := &told{leader: map[string]string{}, led: map[string]time.Time{}, change: make(chan struct{})}
	leader, err := New(newClient(b, endpoint), opts(resource, "leader"))
	if err != nil {
		b.Fatal(err)
	}
	if err := leader.Start(context.Background(), tr.handler("leader")); err != nil {
		b.Fatal(err)
	}
	tr.wait(b, 10*time.Second, "leader leads", func(m map[string]string) bool { return m["leader"] == "leader" })
	counter := newRPCCounter()
	client := newClient(b, endpoint, counter.install)
	if _, err := client.Get(context.Background(), "connect"); err != nil {
		b.Fatal(err)
	}
	var bk *Backend
	if shared {
		if bk, err = NewBackend(client, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	g0 := runtime.NumGoroutine()
	els := make([]*election.Elector, n)
	start := time.Now()
	for i := range els {
		o := opts(resource, fmt.Sprintf("f%04d", i))
		if shared {
			els[i], err = election.New(bk, o.Options)
		} else {
			els[i], err = New(client, o)
		}
		if err != nil {
			b.Fatal(err)
		}
		if err := els[i].Start(context.Background(), tr.handler(o.ID)); err != nil {
			b.Fatal(err)
		}
	}
	all := func(want string) func(map[string]string) bool {
		return func(m map[string]string) bool {
			for i := range n {
				if m[fmt.Sprintf("f%04d", i)] != want {
					return false
				}
			}
			return true
		}
	}
	tr.wait(b, time.Minute, "followers told", all("leader"))
	following := time.Since(start)
	time.Sleep(2 * time.Second) // the followers' watches start
	goroutines := runtime.NumGoroutine() - g0
	rest := counter.snapshot()
	const window = 5 * time.Second
	time.Sleep(window)
	idle := counter.since(rest)
	total := 0
	for _, v := range idle {
		total += v
	}
	b.Logf("%d followers following after %v; %d goroutines (%.2f per follower); goroutines by creator:\n%s",
		n, following.Round(time.Millisecond), goroutines, float64(goroutines)/float64(n), goroutinesByCreator())
	b.Logf("requests at rest over %v: %v", window, idle)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	released := time.Now()
	if err := leader.Close(ctx); err != nil {
		b.Fatal(err)
	}
	var next string
	tr.wait(b, time.Minute, "a follower leads", func(m map[string]string) bool {
		next = m["f0000"]
		return next != "leader" && next != ""
	})
	everyone := tr.wait(b, time.Minute, "followers told the next leader", all(next))
	tr.mu.Lock()
	handover := tr.led[next].Sub(released)
	tr.mu.Unlock()
	b.Logf("the leader closed: %s leads after %v, every follower told after %v", next, handover.Round(time.Millisecond), everyone.Sub(released).Round(time.Millisecond))
	b.ReportMetric(float64(goroutines)/float64(n), "goroutines/follower")
	b.ReportMetric(float64(total)/window.Seconds(), "reqs/s-at-rest")
	b.ReportMetric(handover.Seconds()*1000, "ms-handover")
	b.ReportMetric(everyone.Sub(released).Seconds()*1000, "ms-all-told")
	b.StopTimer()
	var wg sync.WaitGroup
	for _, el := range els {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = el.Close(ctx)
		}()
	}
	wg.Wait()
	if bk != nil {
		_ = bk.Close()
	}
}
