package consul_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/benchscale"
)

// quiet drops the electors' logs: a run that overloads the store would
// print thousands of warnings, and the refused requests are counted.
var quiet = slog.New(slog.DiscardHandler)

// BenchmarkScaleLead measures one process leading many resources (200, or
// SCALE_RESOURCES) with session TTL 15 s, in the same run: electors on one
// SharedSession, electors with a private session each, and api.Lock, one
// lock and session per resource, 32 acquisitions at a time. Each recipe
// has one client, and an agent of its own at the default limits (200
// connections per client address): a recipe that exceeds them leaves the
// agent refusing the next one for a while. See internal/benchscale.Lead
// for the metrics. Run it with
//
//	go test -run '^$' -bench ScaleLead -benchtime 1x ./consul/
//	SCALE_RESOURCES=10000 go test -run '^$' -bench ScaleLead -benchtime 1x -timeout 1h ./consul/
func BenchmarkScaleLead(b *testing.B) {
	for _, r := range []struct {
		name   string
		recipe func(*testing.B, *testserver.ConsulServer) benchscale.Recipe
	}{
		{"shared-session", func(b *testing.B, srv *testserver.ConsulServer) benchscale.Recipe { return leadElectors(b, srv, true) }},
		{"private-sessions", func(b *testing.B, srv *testserver.ConsulServer) benchscale.Recipe { return leadElectors(b, srv, false) }},
		{"api.Lock", leadAPILock},
	} {
		benchscale.Run(b, r.name, func(b *testing.B) benchscale.Metrics {
			srv := testserver.StartConsul(b, testserver.ConsulOptions{})
			return benchscale.Lead(b, benchscale.LeadParamsFromEnv(port(b, srv.Addr)), r.recipe(b, srv))
		})
	}
}

// BenchmarkScaleCandidates measures one process holding many candidates
// (50, or SCALE_CANDIDATES) of one resource through one client, at the
// default options, each recipe on an agent of its own: the idle requests
// per follower, then graceful handovers (20, or SCALE_HANDOVERS),
// electors on one backend (without and with Handoff), electors with a
// backend each, and api.Lock in the same run. See
// internal/benchscale.Handovers for the metrics. Run it with
//
//	go test -run '^$' -bench ScaleCandidates -benchtime 1x ./consul/
//	SCALE_CANDIDATES=1000 go test -run '^$' -bench ScaleCandidates -benchtime 1x -timeout 1h ./consul/
func BenchmarkScaleCandidates(b *testing.B) {
	for _, r := range []struct {
		name string
		pool func(*testing.B, *testserver.ConsulServer, int) func(chan<- benchscale.Led) benchscale.Pool
	}{
		{"electors", func(b *testing.B, srv *testserver.ConsulServer, n int) func(chan<- benchscale.Led) benchscale.Pool {
			return candidateElectors(b, srv, n, true, false)
		}},
		{"electors-backend-each", func(b *testing.B, srv *testserver.ConsulServer, n int) func(chan<- benchscale.Led) benchscale.Pool {
			return candidateElectors(b, srv, n, false, false)
		}},
		{"electors-handoff", func(b *testing.B, srv *testserver.ConsulServer, n int) func(chan<- benchscale.Led) benchscale.Pool {
			return candidateElectors(b, srv, n, true, true)
		}},
		{"api.Lock", candidateAPILocks},
		{"store-floor", candidateFloor},
	} {
		benchscale.Run(b, r.name, func(b *testing.B) benchscale.Metrics {
			srv := testserver.StartConsul(b, testserver.ConsulOptions{})
			p := benchscale.HandoverParamsFromEnv(port(b, srv.Addr))
			return benchscale.Handovers(b, p, r.pool(b, srv, p.Candidates))
		})
	}
}

func port(b *testing.B, addr string) int {
	_, ps, err := net.SplitHostPort(addr)
	if err != nil {
		b.Fatal(err)
	}
	n, err := strconv.Atoi(ps)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// scaleTransport counts the requests sent through the transport of
// api.DefaultConfig, and those refused with 429 Too Many Requests or that
// failed for another reason than their context.
type scaleTransport struct {
	base          *http.Transport
	sent, refused atomic.Int64
}

func newScaleTransport(b *testing.B) *scaleTransport {
	t := &scaleTransport{base: api.DefaultConfig().Transport}
	b.Cleanup(t.base.CloseIdleConnections)
	return t
}

// newBoundedTransport is newScaleTransport with the bound of a client a
// backend creates itself (OwnedMaxConns connections), for the electors:
// a client given to a backend should be bounded below Consul's
// http_max_conns_per_client as well. The native recipes keep the
// defaults: a bound would block api.Lock, which holds a blocking read per
// lock.
func newBoundedTransport(b *testing.B) *scaleTransport {
	t := &scaleTransport{base: api.DefaultConfig().Transport}
	t.base.MaxConnsPerHost = consul.OwnedMaxConns
	b.Cleanup(t.base.CloseIdleConnections)
	return t
}

func (t *scaleTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.sent.Add(1)
	resp, err := t.base.RoundTrip(r)
	if (err != nil && r.Context().Err() == nil) || (err == nil && resp.StatusCode == http.StatusTooManyRequests) {
		t.refused.Add(1)
	}
	return resp, err
}

func (t *scaleTransport) client(b *testing.B, addr string) *api.Client {
	c, err := api.NewClient(&api.Config{Address: addr, HttpClient: &http.Client{Transport: t}})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// leadElectors starts an elector per resource, all on one backend and one
// SharedSession when shared, each with a session of its own otherwise.
func leadElectors(b *testing.B, srv *testserver.ConsulServer, shared bool) benchscale.Recipe {
	tr := newBoundedTransport(b)
	client := tr.client(b, srv.Addr)
	be, err := consul.NewBackend(client, consul.Options{Options: election.Options{Logger: quiet}})
	if err != nil {
		b.Fatal(err)
	}
	name := "private"
	var ss *election.SharedSession
	if shared {
		name = "shared"
		if ss, err = election.NewSharedSession(be, election.SessionOptions{TTL: 15 * time.Second, Logger: quiet}); err != nil {
			b.Skipf("shared session: %v", err)
		}
	}
	var els benchscale.Electors
	return benchscale.Recipe{
		Start: func(_ context.Context, i int, led, lost func()) error {
			o := election.Options{Resource: fmt.Sprintf("scale-%s-%d", name, i), ID: "p", Session: ss, Logger: quiet}
			var el *election.Elector
			var err error
			if shared {
				el, err = election.New(be, o)
			} else {
				o.TTL = 15 * time.Second
				el, err = consul.New(client, consul.Options{Options: o})
			}
			if err != nil {
				return err
			}
			return els.StartLeader(el, led, lost)
		},
		Requests: tr.sent.Load,
		Refused:  tr.refused.Load,
		Stop:     func() { els.Stop(b, ss, be.Close) },
	}
}

// leadAPILock takes one api.Lock per resource, each with a session of its
// own (TTL 15 s, renewed every 7.5 s), 32 at a time.
func leadAPILock(b *testing.B, srv *testserver.ConsulServer) benchscale.Recipe {
	tr := newScaleTransport(b)
	client := tr.client(b, srv.Addr)
	var (
		mu       sync.Mutex
		locks    []*api.Lock
		stopping atomic.Bool
		stopped  = make(chan struct{})
		monitors sync.WaitGroup
	)
	return benchscale.Recipe{
		Parallel: 32,
		Start: func(ctx context.Context, i int, led, lost func()) error {
			lock, err := client.LockOpts(&api.LockOptions{Key: consul.DefaultKey(fmt.Sprintf("scale-apilock-%d", i)), SessionTTL: "15s"})
			if err != nil {
				return err
			}
			stop := make(chan struct{})
			defer context.AfterFunc(ctx, func() { close(stop) })()
			lostCh, err := lock.Lock(stop)
			if err != nil || lostCh == nil {
				return err
			}
			led()
			mu.Lock()
			locks = append(locks, lock)
			mu.Unlock()
			monitors.Add(1)
			go func() {
				defer monitors.Done()
				select {
				case <-lostCh:
					if !stopping.Load() {
						lost()
					}
				case <-stopped:
				}
			}()
			return nil
		},
		Requests: tr.sent.Load,
		Refused:  tr.refused.Load,
		Stop: func() {
			stopping.Store(true)
			close(stopped)
			monitors.Wait()
			sem := make(chan struct{}, 32)
			var wg sync.WaitGroup
			for _, l := range locks {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-sem; wg.Done() }()
					_ = l.Unlock()
				}()
			}
			wg.Wait()
		},
	}
}

// candidateElectors starts n electors of one resource through one client,
// at the default options but for Handoff: all on one backend when
// oneBackend (election.New on one NewBackend), each on a backend of its
// own otherwise (consul.New).
func candidateElectors(b *testing.B, srv *testserver.ConsulServer, n int, oneBackend, handoff bool) func(chan<- benchscale.Led) benchscale.Pool {
	return func(leaders chan<- benchscale.Led) benchscale.Pool {
		tr := newScaleTransport(b)
		if oneBackend {
			tr = newBoundedTransport(b) // a backend each would queue its own blocking reads behind the bound
		}
		client := tr.client(b, srv.Addr)
		be, err := consul.NewBackend(client, consul.Options{Options: election.Options{Logger: quiet}, Handoff: handoff})
		if err != nil {
			b.Fatal(err)
		}
		els := make([]*election.Elector, n)
		var started benchscale.Electors
		for i := range els {
			o := election.Options{Resource: "scale-candidates", ID: fmt.Sprint("c", i), Logger: quiet}
			var el *election.Elector
			if oneBackend {
				el, err = election.New(be, o)
			} else {
				el, err = consul.New(client, consul.Options{Options: o, Handoff: handoff})
			}
			if err != nil {
				b.Fatal(err)
			}
			els[i] = el
			err = started.StartCandidate(el, i, leaders)
			if err != nil {
				b.Fatal(err)
			}
		}
		return benchscale.Pool{
			Release:  func(i int) error { return els[i].Release(context.Background()) },
			Requests: tr.sent.Load,
			Refused:  tr.refused.Load,
			Stop:     func() { started.Stop(b, nil, be.Close) },
		}
	}
}

// candidateAPILocks starts n goroutines contending for one key with
// api.Lock at its defaults (session TTL 15 s, blocking reads of 15 s),
// through one client; each locks again after it released.
func candidateAPILocks(b *testing.B, srv *testserver.ConsulServer, n int) func(chan<- benchscale.Led) benchscale.Pool {
	return func(leaders chan<- benchscale.Led) benchscale.Pool {
		tr := newScaleTransport(b)
		client := tr.client(b, srv.Addr)
		key := consul.DefaultKey("scale-candidates-apilock")
		stop := make(chan struct{})
		release := make([]chan struct{}, n)
		var wg sync.WaitGroup
		for i := range release {
			release[i] = make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					lock, err := client.LockOpts(&api.LockOptions{Key: key})
					if err != nil {
						b.Error(err)
						return
					}
					lost, err := lock.Lock(stop)
					if err != nil {
						select {
						case <-stop:
							return
						case <-time.After(time.Second):
							continue // refused: try again, as a user would
						}
					}
					if lost == nil {
						return
					}
					select {
					case leaders <- benchscale.Led{ID: i, At: time.Now()}:
					default:
					}
					select {
					case <-release[i]:
					case <-stop:
					case <-lost:
					}
					_ = lock.Unlock()
				}
			}()
		}
		return benchscale.Pool{
			Release:  func(i int) error { release[i] <- struct{}{}; return nil },
			Requests: tr.sent.Load,
			Refused:  tr.refused.Load,
			Stop: func() {
				close(stop)
				// Waiting candidates see stop when their blocking read
				// returns; a change of the key returns them all.
				_, _ = client.KV().Delete(key, nil)
				wg.Wait()
			},
		}
	}
}

// candidateFloor times the store's own part of a handover, which no
// recipe can go below: one session releasing a key and another acquiring
// it, two writes one after the other. The electors recipe's n candidates
// run meanwhile, on another resource, where they only wait: the agent and
// the process are as busy as in that recipe, less the handovers' own work.
// Its requests per handover are the two writes.
func candidateFloor(b *testing.B, srv *testserver.ConsulServer, n int) func(chan<- benchscale.Led) benchscale.Pool {
	return func(leaders chan<- benchscale.Led) benchscale.Pool {
		waiting := candidateElectors(b, srv, n, true, false)(make(chan benchscale.Led, n+16))
		tr := newScaleTransport(b)
		client := tr.client(b, srv.Addr)
		key := consul.DefaultKey("scale-candidates-floor")
		var sessions [2]string
		for i := range sessions {
			id, _, err := client.Session().Create(&api.SessionEntry{Behavior: api.SessionBehaviorRelease}, nil)
			if err != nil {
				b.Fatal(err)
			}
			sessions[i] = id
		}
		pair := func(i int) *api.KVPair {
			return &api.KVPair{Key: key, Value: []byte(fmt.Sprint("c", i)), Session: sessions[i]}
		}
		if ok, _, err := client.KV().Acquire(pair(0), nil); err != nil || !ok {
			b.Fatalf("acquire %s: %v, %v", key, ok, err)
		}
		leaders <- benchscale.Led{ID: 0, At: time.Now()}
		return benchscale.Pool{
			Release: func(i int) error {
				if _, _, err := client.KV().Release(pair(i), nil); err != nil {
					return err
				}
				next := 1 - i
				if ok, _, err := client.KV().Acquire(pair(next), nil); err != nil || !ok {
					return fmt.Errorf("acquire %s: %v, %w", key, ok, err)
				}
				leaders <- benchscale.Led{ID: next, At: time.Now()}
				return nil
			},
			Requests: func() int64 { return waiting.Requests() + tr.sent.Load() },
			Refused:  func() int64 { return waiting.Refused() + tr.refused.Load() },
			Stop: func() {
				for _, id := range sessions {
					_, _ = client.Session().Destroy(id, nil)
				}
				waiting.Stop()
			},
		}
	}
}
