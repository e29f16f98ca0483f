package redis_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

// scaleResources is how many resources the shared-session benchmarks lead
// on one lease.
const scaleResources = 10000

// BenchmarkSharedSessionScale leads 10,000 resources on one shared session
// with the default TTL (15 s), and reports how long it took until every
// one was led (acquire-s), the goroutines per resource (goroutines/res),
// and the commands per second the server received at rest (cmds/s, from
// INFO commandstats, over 20 s). Run it once:
//
//	go test -run '^$' -bench SharedSessionScale -benchtime 1x ./redis/
func BenchmarkSharedSessionScale(b *testing.B) {
	srv := testserver.StartRedis(b, testserver.RedisOptions{})
	admin := client(b, srv.Addr())
	c := client(b, srv.Addr())
	before := runtime.NumGoroutine()
	_, s := newShared(b, c, 0)
	rec := newSpans()
	resources := make([]string, scaleResources)
	start := time.Now()
	for i := range resources {
		r := fmt.Sprintf("scale-%05d", i)
		resources[i] = r
		o := sharedOpts(r, "a", s)
		o.RetryInterval = 0
		startWith(b, nil, o, rec.handler(r, "a"))
	}
	rec.waitAll(b, resources, "a", time.Minute)
	took := time.Since(start)
	b.ReportMetric(took.Seconds(), "acquire-s")
	time.Sleep(2 * time.Second) // the subscriptions settle
	runtime.GC()
	if os.Getenv("GOROUTINE_DUMP") != "" {
		_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
	}
	b.ReportMetric(float64(runtime.NumGoroutine()-before)/scaleResources, "goroutines/res")

	ctx := ctxT(b, time.Minute)
	const window = 20 * time.Second
	c0 := commandStats(b, ctx, admin)
	time.Sleep(window)
	c1 := commandStats(b, ctx, admin)
	d := diff(c1, c0)
	delete(d, "info") // the first INFO itself
	// The commands a script runs count too: report the calls the clients
	// sent (scripts and the rest), not those.
	total := 0
	for name, n := range d {
		switch name {
		case "get", "set", "pexpire", "pexpireat", "pexpiretime", "smembers", "srem", "sadd", "del", "publish", "pttl", "incr", "exists":
		default:
			total += n
		}
	}
	b.Logf("commands at rest in %v, a script's own commands included: %v", window, d)
	b.ReportMetric(float64(total)/window.Seconds(), "cmds/s")
}

// BenchmarkLeaseRenew times one renewal (one script call) of a lease that
// holds 10,000 resources, and reports the server's own time per call
// (server-ms, from INFO commandstats) beside the round trip (ms/op).
//
//	go test -run '^$' -bench LeaseRenew -benchtime 50x ./redis/
func BenchmarkLeaseRenew(b *testing.B) {
	srv := testserver.StartRedis(b, testserver.RedisOptions{})
	admin := client(b, srv.Addr())
	c := client(b, srv.Addr())
	be, err := redis.NewBackend(c, redis.BackendOptions{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = be.Close() })
	ctx := ctxT(b, 5*time.Minute)
	l, err := be.NewLease(ctx, election.LeaseParams{TTL: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close(context.Background()) })
	for i := range scaleResources {
		cl, err := l.Claim(election.SessionParams{Resource: fmt.Sprintf("renew-%05d", i), ID: "a", TTL: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		acq, err := cl.Acquire(ctx)
		if err != nil || acq.Session != l.Info().ID {
			b.Fatalf("acquire: %+v, %v", acq, err)
		}
	}
	usec0 := evalUsec(b, ctx, admin)
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := l.Renew(ctx); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(elapsed.Microseconds())/1000/float64(b.N), "ms/op")
	b.ReportMetric((evalUsec(b, ctx, admin)-usec0)/1000/float64(b.N), "server-ms")
}

// commandStats returns the calls of every command the server counted.
func commandStats(t testing.TB, ctx context.Context, admin *goredis.Client) map[string]int {
	t.Helper()
	info, err := admin.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for _, f := range strings.Split(rest, ",") {
			if v, ok := strings.CutPrefix(f, "calls="); ok {
				n, _ := strconv.Atoi(v)
				out[strings.TrimPrefix(name, "cmdstat_")] = n
			}
		}
	}
	return out
}

// evalUsec returns the microseconds the server spent in EVALSHA calls.
func evalUsec(t testing.TB, ctx context.Context, admin *goredis.Client) float64 {
	t.Helper()
	info, err := admin.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:"); ok {
			for _, f := range strings.Split(rest, ",") {
				if v, ok := strings.CutPrefix(f, "usec="); ok {
					n, _ := strconv.ParseFloat(v, 64)
					return n
				}
			}
		}
	}
	return 0
}

// BenchmarkSharedSessionFollowers leads 1,000 resources on one shared
// session (TTL 15 s) while a second shared session, on its own client,
// follows them all, and reports the commands per second each client sends
// at rest (leader-cmds/s, follower-cmds/s), counted over 20 s.
//
//	go test -run '^$' -bench SharedSessionFollowers -benchtime 1x ./redis/
func BenchmarkSharedSessionFollowers(b *testing.B) {
	const n = 1000
	srv := testserver.StartRedis(b, testserver.RedisOptions{})
	lc, fc := newCounter(), newCounter()
	cl, cf := client(b, srv.Addr()), client(b, srv.Addr())
	cl.AddHook(lc)
	cf.AddHook(fc)
	_, sl := newShared(b, cl, 0)
	_, sf := newShared(b, cf, 0)
	rec := newSpans()
	resources := make([]string, n)
	for i := range resources {
		resources[i] = fmt.Sprintf("follow-%04d", i)
		startWith(b, nil, sharedOpts(resources[i], "a", sl), rec.handler(resources[i], "a"))
	}
	rec.waitAll(b, resources, "a", time.Minute)
	for _, r := range resources {
		startWith(b, nil, sharedOpts(r, "b", sf), rec.handler(r, "b"))
	}
	time.Sleep(5 * time.Second) // the followers settle
	const window = 20 * time.Second
	l0, f0 := lc.total(), fc.total()
	time.Sleep(window)
	b.ReportMetric(float64(lc.total()-l0)/window.Seconds(), "leader-cmds/s")
	b.ReportMetric(float64(fc.total()-f0)/window.Seconds(), "follower-cmds/s")
}
