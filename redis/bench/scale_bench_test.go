package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-redsync/redsync/v4"
	rsgoredis "github.com/go-redsync/redsync/v4/redis/goredis/v9"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/benchscale"
	"github.com/consul-leader/consul-leader/redis"
)

// quiet drops the electors' logs: a run that overloads the store would
// print thousands of warnings, and the refused requests are counted.
var quiet = slog.New(slog.DiscardHandler)

// scaleTTL is the session TTL, and redsync's lock expiry, of the scale
// benchmarks; redsync locks are extended every scaleTTL/3, as the electors
// renew.
const scaleTTL = 15 * time.Second

// BenchmarkScaleLead measures one process leading many resources (200, or
// SCALE_RESOURCES) with TTL 15 s, through one client, in the same run:
// electors on one SharedSession, electors with a session each, and
// redsync, a mutex per resource extended every 5 s by a goroutine of its
// own, 32 locks at a time. See internal/benchscale.Lead for the metrics;
// requests are commands, a script call counting as one. Run it with
//
//	go test -run '^$' -bench ScaleLead -benchtime 1x
//	SCALE_RESOURCES=10000 go test -run '^$' -bench ScaleLead -benchtime 1x -timeout 1h
func BenchmarkScaleLead(b *testing.B) {
	srv := testserver.StartRedis(b, testserver.RedisOptions{})
	p := benchscale.LeadParamsFromEnv(addrPort(b, srv.Addr()))
	benchscale.Run(b, "shared-session", func(b *testing.B) benchscale.Metrics { return benchscale.Lead(b, p, leadElectors(b, srv.Addr(), true)) })
	benchscale.Run(b, "private-sessions", func(b *testing.B) benchscale.Metrics {
		return benchscale.Lead(b, p, leadElectors(b, srv.Addr(), false))
	})
	benchscale.Run(b, "redsync", func(b *testing.B) benchscale.Metrics { return benchscale.Lead(b, p, leadRedsync(b, srv.Addr())) })
}

// BenchmarkScaleCandidates measures one process holding many candidates
// (50, or SCALE_CANDIDATES) of one resource through one client, at the
// default options: the idle commands per follower, then graceful handovers
// (20, or SCALE_HANDOVERS), electors on one backend, electors with a
// backend each, and redsync (at its defaults, the leader extending its
// lock every 8/3 s) in the same run. See
// internal/benchscale.Handovers for the metrics. Run it with
//
//	go test -run '^$' -bench ScaleCandidates -benchtime 1x
//	SCALE_CANDIDATES=1000 go test -run '^$' -bench ScaleCandidates -benchtime 1x -timeout 1h
func BenchmarkScaleCandidates(b *testing.B) {
	srv := testserver.StartRedis(b, testserver.RedisOptions{})
	p := benchscale.HandoverParamsFromEnv(addrPort(b, srv.Addr()))
	benchscale.Run(b, "electors", func(b *testing.B) benchscale.Metrics {
		return benchscale.Handovers(b, p, candidateElectors(b, srv.Addr(), p.Candidates, true))
	})
	benchscale.Run(b, "electors-backend-each", func(b *testing.B) benchscale.Metrics {
		return benchscale.Handovers(b, p, candidateElectors(b, srv.Addr(), p.Candidates, false))
	})
	benchscale.Run(b, "redsync", func(b *testing.B) benchscale.Metrics {
		return benchscale.Handovers(b, p, candidateRedsync(b, srv.Addr(), p.Candidates))
	})
}

func addrPort(b *testing.B, addr string) int {
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

func (c *counter) count() int64 { return int64(c.total()) }

// leadElectors starts an elector per resource through one client: all on
// one backend and one SharedSession when shared, each with a backend and
// session of its own otherwise.
func leadElectors(b *testing.B, addr string, shared bool) benchscale.Recipe {
	client, cnt := newClient(b, addr)
	be, err := redis.NewBackend(client, redis.BackendOptions{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	name := "private"
	var ss *election.SharedSession
	if shared {
		name = "shared"
		if ss, err = election.NewSharedSession(be, election.SessionOptions{TTL: scaleTTL, Logger: quiet}); err != nil {
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
				o.TTL = scaleTTL
				el, err = redis.New(client, redis.Options{Options: o})
			}
			if err != nil {
				return err
			}
			return els.StartLeader(el, led, lost)
		},
		Requests: cnt.count,
		Stop:     func() { els.Stop(b, ss, be.Close) },
	}
}

// extend extends m every scaleTTL/3 until ctx ends; it calls lost and
// returns if the lock is no longer held.
func extend(ctx context.Context, m *redsync.Mutex, lost func()) {
	t := time.NewTicker(scaleTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ok, err := m.ExtendContext(ctx); !ok && ctx.Err() == nil {
				if err == nil || !isTransient(err) {
					lost()
					return
				}
			}
		}
	}
}

// isTransient reports whether err may pass on a retry: any error but
// redsync's refusal.
func isTransient(err error) bool { return !errors.Is(err, redsync.ErrExtendFailed) }

// leadRedsync locks a redsync mutex per resource, 32 at a time, and extends
// each from a goroutine of its own.
func leadRedsync(b *testing.B, addr string) benchscale.Recipe {
	client, cnt := newClient(b, addr)
	rs := redsync.New(rsgoredis.NewPool(client))
	var (
		mu      sync.Mutex
		held    []*redsync.Mutex
		extCtx  context.Context
		stopExt context.CancelFunc
		ext     sync.WaitGroup
	)
	extCtx, stopExt = context.WithCancel(context.Background())
	return benchscale.Recipe{
		Parallel: 32,
		Start: func(ctx context.Context, i int, led, lost func()) error {
			m := rs.NewMutex(fmt.Sprintf("scale-redsync-%d", i), redsync.WithExpiry(scaleTTL))
			for {
				err := m.LockContext(ctx)
				if err == nil {
					break
				}
				if ctx.Err() != nil {
					return err
				}
			}
			led()
			mu.Lock()
			held = append(held, m)
			mu.Unlock()
			ext.Add(1)
			go func() {
				defer ext.Done()
				extend(extCtx, m, lost)
			}()
			return nil
		},
		Requests: cnt.count,
		Stop: func() {
			stopExt()
			ext.Wait()
			sem := make(chan struct{}, 32)
			var wg sync.WaitGroup
			for _, m := range held {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-sem; wg.Done() }()
					_, _ = m.Unlock()
				}()
			}
			wg.Wait()
		},
	}
}

// candidateElectors starts n electors of one resource through one client,
// at the default options: all on one backend when oneBackend, each on a
// backend of its own otherwise.
func candidateElectors(b *testing.B, addr string, n int, oneBackend bool) func(chan<- benchscale.Led) benchscale.Pool {
	return func(leaders chan<- benchscale.Led) benchscale.Pool {
		client, cnt := newClient(b, addr)
		be, err := redis.NewBackend(client, redis.BackendOptions{Logger: quiet})
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
				el, err = redis.New(client, redis.Options{Options: o})
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
			Requests: cnt.count,
			Stop:     func() { started.Stop(b, nil, be.Close) },
		}
	}
}

// candidateRedsync starts n goroutines contending for one redsync mutex at
// its defaults (expiry 8 s, 32 tries 50 to 250 ms apart, then again), the
// leader extending it every 8/3 s; a released candidate waits hold before
// it locks again.
func candidateRedsync(b *testing.B, addr string, n int) func(chan<- benchscale.Led) benchscale.Pool {
	return func(leaders chan<- benchscale.Led) benchscale.Pool {
		client, cnt := newClient(b, addr)
		rs := redsync.New(rsgoredis.NewPool(client))
		ctx, cancel := context.WithCancel(context.Background())
		release := make([]chan struct{}, n)
		var wg sync.WaitGroup
		for i := range release {
			release[i] = make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := rs.NewMutex("scale-candidates-redsync")
				for ctx.Err() == nil {
					if err := m.LockContext(ctx); err != nil {
						continue
					}
					select {
					case leaders <- benchscale.Led{ID: i, At: time.Now()}:
					default:
					}
					t := time.NewTicker(8 * time.Second / 3)
				held:
					for {
						select {
						case <-t.C:
							if ok, _ := m.ExtendContext(ctx); !ok {
								break held
							}
						case <-release[i]:
							_, _ = m.UnlockContext(ctx)
							sleep(ctx, hold)
							break held
						case <-ctx.Done():
							_, _ = m.UnlockContext(context.Background())
							break held
						}
					}
					t.Stop()
				}
			}()
		}
		return benchscale.Pool{
			Release:  func(i int) error { release[i] <- struct{}{}; return nil },
			Requests: cnt.count,
			Stop:     func() { cancel(); wg.Wait() },
		}
	}
}
