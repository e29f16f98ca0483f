//go:build linux

package main

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance/testserver"
)

// failoverRounds is the number of rounds of each fault, on each store.
const failoverRounds = 20

// A fault hits the leading runner; restore undoes it once another runner's
// command runs.
type fault struct {
	name    string
	inject  func(s *slot)
	restore func(t testing.TB, s *slot)
}

// slot is one of the two runners of a failover test: its process (replaced
// when it is killed or stopped) and its own proxy to the store.
type slot struct {
	name  string
	proxy *testserver.Proxy
	start func() *runnerProc
	proc  *runnerProc
}

var faults = []fault{
	{"kill", func(s *slot) { s.proc.kill() }, func(t testing.TB, s *slot) {
		s.proc.wait(t, 10*time.Second)
		s.proc = s.start()
	}},
	{"partition", func(s *slot) { s.proxy.Cut() }, func(t testing.TB, s *slot) { s.proxy.Heal() }},
	{"pause", func(s *slot) { s.proc.signal(syscall.SIGSTOP) }, func(t testing.TB, s *slot) { s.proc.signal(syscall.SIGCONT) }},
	{"release", func(s *slot) { s.proc.signal(syscall.SIGTERM) }, func(t testing.TB, s *slot) {
		// The command exits 0 on SIGTERM, unless it was too slow for the
		// grace and got SIGKILL.
		if code := s.proc.wait(t, 10*time.Second); code != 0 && code != 128+int(syscall.SIGKILL) {
			t.Errorf("runner %s stopped with SIGTERM exited %d, want its command's 0 (or 137)", s.name, code)
		}
		s.proc = s.start()
	}},
}

// TestFailover runs two runners of one resource on each store, and hits
// the leading one with each fault in turn (killed, cut off from the store,
// stopped with SIGSTOP, stopped with SIGTERM), failoverRounds times each.
// The two commands must never run at the same time, by the monotonic times
// they record, and the other runner's command must start within the
// failover bound after each fault.
//
// The three stores run at once, in goroutines of this one test: they
// mostly wait, and as parallel subtests they would wait for each other
// under the default -parallel (GOMAXPROCS) of a small machine.
func TestFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server failover rounds skipped in -short mode")
	}
	t.Parallel()
	var wg sync.WaitGroup
	for _, sc := range failoverStores {
		wg.Go(func() {
			gt := goroutineTB{TB: t, prefix: sc.name + ": "}
			testFailover(gt, sc, sc.start(gt))
		})
	}
	wg.Wait()
}

// goroutineTB is the testing.TB of a goroutine of a test: its Fatal and
// Skip end the goroutine (not the test) after reporting, prefixed; a
// skip is logged only.
type goroutineTB struct {
	testing.TB
	prefix string
}

func (g goroutineTB) Errorf(format string, args ...any) {
	g.TB.Helper()
	g.TB.Errorf(g.prefix+format, args...)
}
func (g goroutineTB) Error(args ...any) {
	g.TB.Helper()
	g.TB.Error(g.prefix + fmt.Sprint(args...))
}
func (g goroutineTB) Logf(format string, args ...any) {
	g.TB.Helper()
	g.TB.Logf(g.prefix+format, args...)
}
func (g goroutineTB) Log(args ...any) { g.TB.Helper(); g.TB.Log(g.prefix + fmt.Sprint(args...)) }
func (g goroutineTB) FailNow()        { g.TB.Fail(); runtime.Goexit() }
func (g goroutineTB) Fatalf(format string, args ...any) {
	g.TB.Helper()
	g.Errorf(format, args...)
	runtime.Goexit()
}
func (g goroutineTB) Fatal(args ...any) { g.TB.Helper(); g.Error(args...); runtime.Goexit() }
func (g goroutineTB) SkipNow()          { g.Log("skipped"); runtime.Goexit() }
func (g goroutineTB) Skip(args ...any)  { g.Log(args...); runtime.Goexit() }
func (g goroutineTB) Skipf(format string, args ...any) {
	g.Logf(format, args...)
	runtime.Goexit()
}

// storeCase is a store of the failover tests, with settings for a fast
// failover.
type storeCase struct {
	name  string
	ttl   time.Duration             // the election TTL the URL sets
	start func(t testing.TB) string // starts the server, returns its address
	url   func(addr string) string  // the URL of the store at addr
	// bound is the longest failover after a fault that leaves the session to
	// expire (kill, partition, pause): the documented TTL + MaxRetryDelay
	// (TTL/2, +20 % jitter), and a TTL and a second more for the command's
	// start and the delays of a busy machine.
	bound time.Duration
}

var failoverStores = []storeCase{
	{
		name:  "consul",
		ttl:   2 * time.Second,
		start: func(t testing.TB) string { return testserver.StartConsul(t, testserver.ConsulOptions{}).Addr },
		url:   func(addr string) string { return "consul://" + addr + "?checkTTL=2s" },
		bound: 7 * time.Second,
	},
	{
		name:  "etcd",
		ttl:   2 * time.Second,
		start: func(t testing.TB) string { return testserver.StartEtcd(t, testserver.EtcdOptions{}).Endpoint() },
		url:   func(addr string) string { return "etcd://" + addr + "?ttl=2s" },
		bound: 7 * time.Second,
	},
	{
		name:  "redis",
		ttl:   2 * time.Second,
		start: func(t testing.TB) string { return testserver.StartRedis(t, testserver.RedisOptions{}).Addr() },
		url:   func(addr string) string { return "redis://" + addr + "?ttl=2s" },
		bound: 7 * time.Second,
	},
}

// releaseBound is the longest failover after a runner's stop by SIGTERM:
// the command's stop (at most the grace), the release and the other
// runner's acquisition, each a request or two, on a busy machine.
const releaseBound = 3 * time.Second

func testFailover(t testing.TB, sc storeCase, addr string) {
	log := logPath(t)
	slots := make([]*slot, 2)
	for i, name := range []string{"A", "B"} {
		s := &slot{name: name, proxy: testserver.NewProxy(t, addr)}
		s.start = func() *runnerProc {
			return startRunnerBin(t, plainBin, name, log, "", "--store", sc.url(s.proxy.Addr()), "--resource", "runner-failover", "--id", name, "--log-level", "warn")
		}
		s.proc = s.start()
		slots[i] = s
	}
	waitFor(t, 30*time.Second, "first command", func() bool { return running(runs(readLog(t, log))) != nil })
	took := map[string][]time.Duration{}
	for round := range failoverRounds * len(faults) {
		f := faults[round%len(faults)]
		var lead *run
		waitFor(t, sc.bound, "running command", func() bool { lead = running(runs(readLog(t, log))); return lead != nil })
		leader := slots[0]
		if lead.name == "B" {
			leader = slots[1]
		}
		other := slots[0]
		if leader == other {
			other = slots[1]
		}
		bound := sc.bound
		if f.name == "release" {
			bound = releaseBound
		}
		at := monoNow()
		f.inject(leader)
		var next *run
		deadline := time.Now().Add(bound + 10*time.Second)
		for next == nil && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
			for _, r := range runs(readLog(t, log)) {
				if r.name == other.name && r.start > at {
					next = r
					break
				}
			}
		}
		if next == nil {
			t.Fatalf("round %d (%s of %s): %s's command did not start within %v", round, f.name, leader.name, other.name, bound+10*time.Second)
		}
		d := next.start.sub(at)
		took[f.name] = append(took[f.name], d)
		if d > bound {
			t.Errorf("round %d (%s of %s): %s's command started %v after the fault, past the bound %v", round, f.name, leader.name, other.name, d, bound)
		}
		f.restore(t, leader)
	}
	rs := runs(readLog(t, log))
	for _, o := range overlaps(rs) {
		t.Error("overlap: " + o)
	}
	killed := 0
	for i, r := range rs {
		if i < len(rs)-1 && !r.stopped {
			killed++ // SIGKILL after the grace: the command was too slow to stop
		}
		if i > 0 && r.term <= rs[i-1].term {
			t.Errorf("%s's command has term %d, after a command of term %d", r.name, r.term, rs[i-1].term)
		}
	}
	var sum []string
	for _, f := range faults {
		d := took[f.name]
		slices.Sort(d)
		if len(d) > 0 {
			sum = append(sum, fmt.Sprintf("%s: median %v, max %v", f.name, d[len(d)/2].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond)))
		}
	}
	t.Logf("%d commands over %d rounds (%d killed after the grace); failover after %s", len(rs), failoverRounds*len(faults), killed, strings.Join(sum, "; "))
	if os.Getenv("RUNNER_TEST_KEEP_LOG") != "" {
		t.Log(log)
	}
}
