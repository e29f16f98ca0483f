package redis_test

import (
	"context"
	"math/rand/v2"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

// The benchmarks measure latencies and idle costs, not throughput: run them
// with a count of rounds, for example
//
//	go test -run '^$' -bench 'Handover|Crash' -benchtime 200x ./redis/
//	go test -run '^$' -bench Idle -benchtime 1x ./redis/
//
// and read the custom metrics (p50-ms, p99-ms, cmds/s); ns/op includes the
// pauses between rounds and means nothing.

// benchPace is the pause between two handovers. It exceeds benchRetry, so
// that every candidate but the leader is campaigning when the leader
// releases.
const (
	benchPace  = 150 * time.Millisecond
	benchRetry = 100 * time.Millisecond
)

// leaderEvent is a candidate starting to lead.
type leaderEvent struct {
	id int
	at time.Time
}

// handoverRounds runs b.N handovers: it releases the current leader through
// release and waits for the next one on leaders. It reports the latencies
// from the release call to the next leader's start.
func handoverRounds(b *testing.B, leaders <-chan leaderEvent, release func(id int)) {
	cur := <-leaders
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		time.Sleep(benchPace)
		released := time.Now()
		release(cur.id)
		next := <-leaders
		if next.id == cur.id {
			b.Fatalf("candidate %d led again right after releasing", cur.id)
		}
		samples = append(samples, next.at.Sub(released))
		cur = next
	}
	b.StopTimer()
	reportLatencies(b, samples)
}

func reportLatencies(b *testing.B, samples []time.Duration) {
	slices.Sort(samples)
	q := func(p float64) float64 {
		i := min(int(p*float64(len(samples))), len(samples)-1)
		return float64(samples[i].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(samples[len(samples)-1].Microseconds())/1000, "max-ms")
}

// BenchmarkHandover measures graceful handover among 3 candidates on one
// server: this package's electors, and the loop a redsync user writes (SET
// NX PX, retried every 50 to 250 ms at random, redsync's defaults; the
// key deleted by a compare-and-delete script), in the same run.
func BenchmarkHandover(b *testing.B) {
	srv := testserver.StartRedis(b, testserver.RedisOptions{})
	b.Run("elector", func(b *testing.B) {
		leaders := make(chan leaderEvent, 8)
		var els []*election.Elector
		for i := range 3 {
			o := redis.Options{Options: election.Options{Resource: "bench-handover", TTL: 10 * time.Second, RetryInterval: benchRetry}}
			el, _ := benchElector(b, srv.Addr(), o, i, leaders)
			els = append(els, el)
		}
		handoverRounds(b, leaders, func(id int) {
			if err := els[id].Release(context.Background()); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("setnx-retry", func(b *testing.B) {
		leaders := make(chan leaderEvent, 8)
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var releases []chan struct{}
		for i := range 3 {
			c := client(b, srv.Addr())
			rel := make(chan struct{})
			releases = append(releases, rel)
			wg.Add(1)
			go func() {
				defer wg.Done()
				setnxLoop(ctx, c, "bench-setnx", i, leaders, rel)
			}()
		}
		defer func() { stop(); wg.Wait() }()
		handoverRounds(b, leaders, func(id int) { releases[id] <- struct{}{} })
	})
}

// benchElector starts an elector through its own client that reports its
// leader calls on leaders.
func benchElector(b *testing.B, addr string, o redis.Options, id int, leaders chan<- leaderEvent) (*election.Elector, *counter) {
	cnt := newCounter()
	c := client(b, addr)
	c.AddHook(cnt)
	el, err := redis.New(c, o)
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	b.Cleanup(func() {
		_ = el.Close(context.Background())
		stop()
	})
	err = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			select {
			case leaders <- leaderEvent{id: id, at: time.Now()}:
			case <-ctx.Done():
			}
			<-ctx.Done()
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	return el, cnt
}

// unlockScript deletes the lock if it still holds the caller's value, as
// redsync's Unlock does.
var unlockScript = goredis.NewScript(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`)

// setnxLoop is a redsync-style election loop with redsync's defaults: try
// SET NX PX 8s, and retry after a random 50 to 250 ms. After a release it
// waits 300 ms, longer than any retry delay, so that another candidate takes
// over (the electors get the same effect from RetryInterval and their
// immediate wake-up).
func setnxLoop(ctx context.Context, c *goredis.Client, key string, id int, leaders chan<- leaderEvent, release <-chan struct{}) {
	value := time.Now().String() + string(rune('a'+id))
	for ctx.Err() == nil {
		ok, err := c.SetNX(ctx, key, value, 8*time.Second).Result()
		if err == nil && ok {
			select {
			case leaders <- leaderEvent{id: id, at: time.Now()}:
			case <-ctx.Done():
			}
			select {
			case <-release:
				unlockScript.Run(ctx, c, []string{key}, value)
				sleepFor(ctx, 300*time.Millisecond)
			case <-ctx.Done():
				unlockScript.Run(context.Background(), c, []string{key}, value)
			}
			continue
		}
		sleepFor(ctx, time.Duration(50+rand.IntN(200))*time.Millisecond)
	}
}

func sleepFor(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// BenchmarkCrashFailover measures, with a TTL of 1 s, the time from a
// leader's crash (its connection cut: no release, no renewal) to the next
// leader's start, among 3 candidates. The target is TTL + 0.5 s at most.
func BenchmarkCrashFailover(b *testing.B) {
	srv := testserver.StartRedis(b, testserver.RedisOptions{})
	leaders := make(chan leaderEvent, 8)
	var proxies []*testserver.Proxy
	for i := range 3 {
		p := testserver.NewProxy(b, srv.Addr())
		proxies = append(proxies, p)
		o := election.Options{Resource: "bench-crash", TTL: time.Second, RetryInterval: benchRetry}
		el, err := redis.OpenURL(context.Background(), &url.URL{Scheme: "redis", Host: p.Addr()}, o)
		if err != nil {
			b.Fatal(err)
		}
		ctx, stop := context.WithCancel(context.Background())
		b.Cleanup(func() {
			p.Heal()
			_ = el.Close(context.Background())
			stop()
		})
		err = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				select {
				case leaders <- leaderEvent{id: i, at: time.Now()}:
				case <-ctx.Done():
				}
				<-ctx.Done()
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	cur := <-leaders
	samples := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		time.Sleep(400*time.Millisecond + rand.N(500*time.Millisecond)) // renewals, crash at a random phase
		crashed := time.Now()
		proxies[cur.id].Cut()
		next := <-leaders
		samples = append(samples, next.at.Sub(crashed))
		proxies[cur.id].Heal()
		cur = next
	}
	b.StopTimer()
	reportLatencies(b, samples)
}

// BenchmarkIdleFollower counts the commands each follower sends while
// nothing happens, with the default options and with a TTL of 2 s; and, for
// comparison, those of a follower of the SET NX retry loop.
func BenchmarkIdleFollower(b *testing.B) {
	const window = 10 * time.Second
	srv := testserver.StartRedis(b, testserver.RedisOptions{})
	for _, tc := range []struct {
		name string
		ttl  time.Duration
	}{{"default-ttl", 0}, {"ttl-2s", 2 * time.Second}} {
		b.Run(tc.name, func(b *testing.B) {
			leaders := make(chan leaderEvent, 8)
			var cnts []*counter
			for i := range 3 {
				o := redis.Options{Options: election.Options{Resource: "bench-idle-" + tc.name, TTL: tc.ttl}}
				_, cnt := benchElector(b, srv.Addr(), o, i, leaders)
				cnts = append(cnts, cnt)
			}
			lead := <-leaders
			time.Sleep(time.Second) // settled: followers wait
			before := make([]int, len(cnts))
			for i, c := range cnts {
				before[i] = c.total()
			}
			time.Sleep(window)
			var follower float64
			for i, c := range cnts {
				rate := float64(c.total()-before[i]) / window.Seconds()
				if i == lead.id {
					b.ReportMetric(rate, "leader-cmds/s")
				} else {
					follower = max(follower, rate)
				}
			}
			b.ReportMetric(follower, "follower-cmds/s")
		})
	}
	b.Run("setnx-retry", func(b *testing.B) {
		leaders := make(chan leaderEvent, 8)
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		cnt := newCounter()
		for i := range 2 {
			c := client(b, srv.Addr())
			if i == 1 {
				c.AddHook(cnt)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				setnxLoop(ctx, c, "bench-idle-setnx", i, leaders, nil)
			}()
			if i == 0 {
				<-leaders // candidate 0 leads; 1 follows
			}
		}
		defer func() { stop(); wg.Wait() }()
		time.Sleep(time.Second)
		before := cnt.total()
		time.Sleep(window / 3)
		b.ReportMetric(float64(cnt.total()-before)/(window/3).Seconds(), "follower-cmds/s")
	})
}
