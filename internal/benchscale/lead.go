package benchscale

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The environment variables that size the benchmarks; each has a default
// small enough for a quick run.
const (
	// EnvResources is how many resources one process leads (default 200).
	EnvResources = "SCALE_RESOURCES"
	// EnvCandidates is how many candidates of one resource one process
	// holds (default 50).
	EnvCandidates = "SCALE_CANDIDATES"
	// EnvWindow is the window over which steady or idle requests are
	// counted (default 15s, one session TTL).
	EnvWindow = "SCALE_WINDOW"
	// EnvHandovers is how many graceful handovers a run of candidates
	// takes (default 20).
	EnvHandovers = "SCALE_HANDOVERS"
	// EnvSettle is how long a Lead run waits after the last acquisition
	// before it counts requests (default 1s): many resources take longer
	// to reach their steady state.
	EnvSettle = "SCALE_SETTLE"
	// EnvHeapProfile, when set, names a file to which a Lead run writes
	// the profile of the heap in use at the end of its window (see
	// runtime/pprof), for go tool pprof -sample_index=inuse_space.
	EnvHeapProfile = "SCALE_HEAPPROFILE"
	// EnvPause separates two handovers (default 200ms); it must exceed
	// the candidates' RetryInterval when they are few, so that the
	// released ones wait again before the next release.
	EnvPause = "SCALE_PAUSE"
	// EnvBlocking, when set, makes the handlers of a Lead run block in
	// their leader calls until their terms end (see Electors.StartLeader).
	EnvBlocking = "SCALE_BLOCKING"
	// EnvTimeout bounds the wait for every leadership, or for one handover
	// (default 2m).
	EnvTimeout = "SCALE_TIMEOUT"
)

// Counter reports a running total, such as the requests sent so far.
type Counter func() int64

// Recipe is one way of leading many resources from one process.
type Recipe struct {
	// Start starts leading resource i, one of 0 to Resources-1. It calls
	// led once it leads, and lost if it stops leading before Stop. It may
	// block until it leads, or return at once; once ctx ends it must
	// return promptly, leading or not.
	Start func(ctx context.Context, i int, led, lost func()) error
	// Parallel is how many Start calls run at once. Default: all.
	Parallel int
	// Requests counts the requests sent to the store; nil when not
	// counted.
	Requests Counter
	// Refused counts the requests the store refused for load (HTTP 429)
	// or whose connection failed; nil when not counted.
	Refused Counter
	// Stop gives up every leadership and frees what Start took. It is
	// called after every Start returned.
	Stop func()
}

// LeadParams size a Lead run.
type LeadParams struct {
	// Resources is how many resources to lead.
	Resources int
	// Port is the store's port, whose connections are counted; zero for
	// a store in the process.
	Port int
	// Settle is how long to wait after the last acquisition before
	// counting requests.
	Settle time.Duration
	// Window is how long steady requests are counted.
	Window time.Duration
	// Timeout bounds the wait for every leadership.
	Timeout time.Duration
}

// LeadParamsFromEnv returns the parameters of the environment (see
// EnvResources), for a store on port.
func LeadParamsFromEnv(port int) LeadParams {
	return LeadParams{
		Resources: Int(EnvResources, 200),
		Port:      port,
		Settle:    Duration(EnvSettle, time.Second),
		Window:    Duration(EnvWindow, 15*time.Second),
		Timeout:   Duration(EnvTimeout, 2*time.Minute),
	}
}

// Lead runs r and returns, as metrics for b:
//
//   - acquire-s: from the first Start until every resource is led, or
//     every Start call that did not lead failed, or Timeout passed;
//   - acquired: how many were led by then; Start calls that fail are not
//     retried;
//   - req/s: requests per second over Window, from Settle after the last
//     acquisition; refused: the requests refused meanwhile, when counted;
//   - lost: leaderships lost before Stop;
//   - sockets: the TCP connections open to the store at the end of the
//     window;
//   - rss-MB, heap-KB/res, live-KB/res, stack-KB/res, goroutines/res: what
//     the process grew by, from before the first Start to the end of the
//     window, after a collection (heap: in-use spans; live: the objects in
//     them; stacks: of all goroutines, also the stores' clients').
//
// With SCALE_HEAPPROFILE set, it writes the heap profile then to that file.
func Lead(b *testing.B, p LeadParams, r Recipe) Metrics {
	b.Helper()
	time.Sleep(time.Second) // what a previous run closed winds down
	before := Take()
	var ledN, lostN atomic.Int64
	all := make(chan struct{})
	var once sync.Once
	led := func() {
		if ledN.Add(1) == int64(p.Resources) {
			once.Do(func() { close(all) })
		}
	}
	lost := func() { lostN.Add(1) }
	parallel := r.Parallel
	if parallel <= 0 {
		parallel = p.Resources
	}
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	var failed atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	launched := make(chan struct{})
	start := time.Now()
	b.ResetTimer()
	go func() {
		defer close(launched)
		for i := range p.Resources {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if err := r.Start(ctx, i, led, lost); err != nil && ctx.Err() == nil {
					if failed.Add(1) <= 3 {
						b.Logf("start %d: %v", i, err)
					}
				}
			}()
		}
	}()
	deadline := time.After(p.Timeout)
	tick := time.NewTicker(10 * time.Millisecond)
wait:
	for {
		select {
		case <-all:
			break wait
		case <-tick.C:
			if ledN.Load()+failed.Load() >= int64(p.Resources) {
				b.Logf("%d of %d Start calls failed", failed.Load(), p.Resources)
				break wait
			}
		case <-deadline:
			b.Logf("%d of %d resources led after %v", ledN.Load(), p.Resources, p.Timeout)
			break wait
		}
	}
	tick.Stop()
	acquired := time.Since(start)
	b.StopTimer()
	time.Sleep(p.Settle)
	var req0, ref0 int64
	if r.Requests != nil {
		req0 = r.Requests()
	}
	if r.Refused != nil {
		ref0 = r.Refused()
	}
	time.Sleep(p.Window)
	var req1 int64
	if r.Requests != nil {
		req1 = r.Requests()
	}
	sockets := -1
	if p.Port != 0 {
		sockets = Sockets(p.Port)
	}
	after := Take()
	if f := os.Getenv(EnvHeapProfile); f != "" {
		if err := WriteHeapProfile(f); err != nil {
			b.Errorf("heap profile: %v", err)
		}
	}
	var m Metrics
	m.add(acquired.Seconds(), "acquire-s")
	m.add(float64(ledN.Load()), "acquired")
	if r.Requests != nil {
		m.add(float64(req1-req0)/p.Window.Seconds(), "req/s")
	}
	if r.Refused != nil {
		m.add(float64(r.Refused()-ref0), "refused")
	}
	m.add(float64(lostN.Load()), "lost")
	if sockets >= 0 {
		m.add(float64(sockets), "sockets")
	}
	if before.RSS >= 0 && after.RSS >= 0 {
		m.add(float64(after.RSS-before.RSS)/(1<<20), "rss-MB")
	}
	m.add(float64(int64(after.HeapInuse)-int64(before.HeapInuse))/1024/float64(p.Resources), "heap-KB/res")
	m.add(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/1024/float64(p.Resources), "live-KB/res")
	m.add(float64(int64(after.StackInuse)-int64(before.StackInuse))/1024/float64(p.Resources), "stack-KB/res")
	m.add(float64(after.Goroutines-before.Goroutines)/float64(p.Resources), "goroutines/res")
	if n := failed.Load(); n > 0 {
		b.Logf("%d Start calls failed", n)
	}
	cancel()
	<-launched
	wg.Wait()
	r.Stop()
	return m
}
