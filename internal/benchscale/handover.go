package benchscale

import (
	"testing"
	"time"
)

// Led is a candidate starting to lead: its index, and when its handler ran
// (or its lock call returned).
type Led struct {
	ID int
	At time.Time
}

// Pool is N candidates of one resource in one process, started by the
// function given to Handovers.
type Pool struct {
	// Release makes candidate i, the leader, give up its leadership; the
	// candidate campaigns again afterwards.
	Release func(i int) error
	// Requests counts the requests sent to the store by every candidate.
	Requests Counter
	// Refused counts the requests refused for load or whose connection
	// failed; nil when not counted.
	Refused Counter
	// Stop stops every candidate.
	Stop func()
}

// HandoverParams size a Handovers run.
type HandoverParams struct {
	// Candidates is how many candidates contend.
	Candidates int
	// Port is the store's port, whose connections are counted.
	Port int
	// Window is how long idle requests are counted.
	Window time.Duration
	// Handovers is how many graceful handovers are timed.
	Handovers int
	// Pause separates two handovers, for the followers to wait again.
	Pause time.Duration
	// Timeout bounds the wait for a leader.
	Timeout time.Duration
}

// HandoverParamsFromEnv returns the parameters of the environment (see
// EnvCandidates), for a store on port.
func HandoverParamsFromEnv(port int) HandoverParams {
	return HandoverParams{
		Candidates: Int(EnvCandidates, 50),
		Port:       port,
		Window:     Duration(EnvWindow, 15*time.Second),
		Handovers:  Int(EnvHandovers, 20),
		Pause:      Duration(EnvPause, 200*time.Millisecond),
		Timeout:    Duration(EnvTimeout, 2*time.Minute),
	}
}

// Handovers starts p.Candidates candidates with start, which must report
// every start of a leadership on leaders, lets them settle, and returns, as
// metrics for b:
//
//   - idle-req/s/follower: the requests per second over Window while
//     nobody changes, divided by the followers (the leader's few renewals
//     included);
//   - sockets: the TCP connections open to the store then;
//   - p50-ms, p99-ms, max-ms: graceful handover latency, from Release of
//     the leader until the next leader's handler ran;
//   - req/handover: the requests sent per handover beyond the idle rate;
//   - refused: requests refused from the start, when counted.
func Handovers(b *testing.B, p HandoverParams, start func(leaders chan<- Led) Pool) Metrics {
	b.Helper()
	leaders := make(chan Led, p.Candidates+16)
	pool := start(leaders)
	defer pool.Stop()
	next := func() (Led, bool) {
		select {
		case l := <-leaders:
			return l, true
		case <-time.After(p.Timeout):
			b.Errorf("no leader within %v", p.Timeout)
			return Led{}, false
		}
	}
	cur, ok := next()
	if !ok {
		return nil
	}
	// Every candidate reads the leadership, then waits.
	time.Sleep(2*time.Second + time.Duration(p.Candidates)*2*time.Millisecond)
	req0 := pool.Requests()
	time.Sleep(p.Window)
	idleRate := float64(pool.Requests()-req0) / p.Window.Seconds()
	sockets := Sockets(p.Port)

	samples := make([]time.Duration, 0, p.Handovers)
	req0 = pool.Requests()
	began := time.Now()
	b.ResetTimer()
	for range p.Handovers {
		released := time.Now()
		if err := pool.Release(cur.ID); err != nil {
			b.Errorf("release %d: %v", cur.ID, err)
			break
		}
		l, ok := next()
		if !ok {
			break
		}
		if l.ID == cur.ID {
			b.Logf("candidate %d led again right after releasing", cur.ID)
		}
		samples = append(samples, l.At.Sub(released))
		if testing.Verbose() {
			b.Logf("handover %d -> %d: %v", cur.ID, l.ID, l.At.Sub(released))
		}
		cur = l
		time.Sleep(p.Pause)
	}
	b.StopTimer()
	reqs := float64(pool.Requests()-req0) - idleRate*time.Since(began).Seconds()
	var m Metrics
	m.add(idleRate/float64(max(1, p.Candidates-1)), "idle-req/s/follower")
	m.add(float64(sockets), "sockets")
	if len(samples) > 0 {
		m.add(Ms(Quantile(samples, 0.5)), "p50-ms")
		m.add(Ms(Quantile(samples, 0.99)), "p99-ms")
		m.add(Ms(samples[len(samples)-1]), "max-ms")
		m.add(reqs/float64(len(samples)), "req/handover")
	}
	if pool.Refused != nil {
		m.add(float64(pool.Refused()), "refused")
	}
	return m
}
