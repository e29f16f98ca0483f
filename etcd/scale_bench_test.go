package etcd

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/internal/benchscale"
)

// quiet drops the electors' logs: a run that overloads the store would
// print thousands of warnings, and the refused requests are counted.
var quiet = slog.New(slog.DiscardHandler)

// scaleTTL is the session TTL of the scale benchmarks, the default one.
const scaleTTL = 15 * time.Second

// BenchmarkScaleLead measures one process leading many resources (200, or
// SCALE_RESOURCES) with lease TTL 15 s, through one client, in the same run:
// electors on one SharedSession, electors with a lease each, and
// concurrency.Election on one shared concurrency.Session, 32 campaigns at a
// time. See internal/benchscale.Lead for the metrics; requests count unary
// calls, streams opened and messages sent on streams. Run it with
//
//	go test -run '^$' -bench ScaleLead -benchtime 1x ./etcd/
//	SCALE_RESOURCES=10000 go test -run '^$' -bench ScaleLead -benchtime 1x -timeout 1h ./etcd/
func BenchmarkScaleLead(b *testing.B) {
	srv := benchServer(b)
	p := benchscale.LeadParamsFromEnv(endpointPort(b, srv.Endpoint()))
	benchscale.Run(b, "shared-session", func(b *testing.B) benchscale.Metrics {
		return benchscale.Lead(b, p, leadElectors(b, srv.Endpoint(), true))
	})
	benchscale.Run(b, "private-sessions", func(b *testing.B) benchscale.Metrics {
		return benchscale.Lead(b, p, leadElectors(b, srv.Endpoint(), false))
	})
	benchscale.Run(b, "concurrency.Election", func(b *testing.B) benchscale.Metrics {
		return benchscale.Lead(b, p, leadConcurrency(b, srv.Endpoint()))
	})
}

// BenchmarkScaleCandidates measures one process holding many candidates
// (50, or SCALE_CANDIDATES) of one resource through one client, at the
// default options (TTL 15 s): the idle requests per follower, then
// graceful handovers (20, or SCALE_HANDOVERS), electors on one backend,
// electors with a backend each, and concurrency.Election (a session per
// candidate) in the same run, and the store's own part of a handover,
// store-floor (see candidateFloor). See
// internal/benchscale.Handovers for the metrics. Run it with
//
//	go test -run '^$' -bench ScaleCandidates -benchtime 1x ./etcd/
//	SCALE_CANDIDATES=1000 go test -run '^$' -bench ScaleCandidates -benchtime 1x -timeout 1h ./etcd/
func BenchmarkScaleCandidates(b *testing.B) {
	srv := benchServer(b)
	p := benchscale.HandoverParamsFromEnv(endpointPort(b, srv.Endpoint()))
	benchscale.Run(b, "electors", func(b *testing.B) benchscale.Metrics {
		return benchscale.Handovers(b, p, candidateElectors(b, srv.Endpoint(), p.Candidates, true))
	})
	benchscale.Run(b, "electors-backend-each", func(b *testing.B) benchscale.Metrics {
		return benchscale.Handovers(b, p, candidateElectors(b, srv.Endpoint(), p.Candidates, false))
	})
	benchscale.Run(b, "concurrency.Election", func(b *testing.B) benchscale.Metrics {
		return benchscale.Handovers(b, p, candidateConcurrency(b, srv.Endpoint(), p.Candidates))
	})
	benchscale.Run(b, "store-floor", func(b *testing.B) benchscale.Metrics {
		return benchscale.Handovers(b, p, candidateFloor(b, srv.Endpoint(), p.Candidates))
	})
}

func endpointPort(b *testing.B, endpoint string) int {
	_, ps, err := net.SplitHostPort(endpoint)
	if err != nil {
		b.Fatal(err)
	}
	n, err := strconv.Atoi(ps)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// total is the number of requests counted so far.
func (c *rpcCounter) total() int64 {
	var n int64
	for _, v := range c.snapshot() {
		n += int64(v)
	}
	return n
}

// leadElectors starts an elector per resource through one client: all on
// one backend and one SharedSession when shared, each with a backend and
// lease of its own otherwise.
func leadElectors(b *testing.B, endpoint string, shared bool) benchscale.Recipe {
	counter := newRPCCounter()
	client := newClient(b, endpoint, counter.install)
	be, err := NewBackend(client, Options{Options: election.Options{Logger: quiet}})
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
				el, err = New(client, Options{Options: o})
			}
			if err != nil {
				return err
			}
			return els.StartLeader(el, led, lost)
		},
		Requests: counter.total,
		Stop:     func() { els.Stop(b, ss, be.Close) },
	}
}

// leadConcurrency campaigns with a concurrency.Election per resource, all
// on one concurrency.Session.
func leadConcurrency(b *testing.B, endpoint string) benchscale.Recipe {
	counter := newRPCCounter()
	client := newClient(b, endpoint, counter.install)
	s, err := concurrency.NewSession(client, concurrency.WithTTL(int(scaleTTL/time.Second)))
	if err != nil {
		b.Fatal(err)
	}
	var (
		mu       sync.Mutex
		elected  []*concurrency.Election
		stopping atomic.Bool
		watched  = make(chan struct{})
	)
	go func() {
		defer close(watched)
		<-s.Done() // the session's end loses every election
		if !stopping.Load() {
			mu.Lock()
			defer mu.Unlock()
			b.Logf("session ended: %d elections lost", len(elected))
		}
	}()
	return benchscale.Recipe{
		Parallel: 32,
		Start: func(ctx context.Context, i int, led, lost func()) error {
			e := concurrency.NewElection(s, DefaultPrefix(fmt.Sprintf("scale-concurrency-%d", i)))
			if err := e.Campaign(ctx, "p"); err != nil {
				return err
			}
			led()
			mu.Lock()
			elected = append(elected, e)
			mu.Unlock()
			return nil
		},
		Requests: counter.total,
		Stop: func() {
			stopping.Store(true)
			sem := make(chan struct{}, 32)
			var wg sync.WaitGroup
			for _, e := range elected {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer func() { <-sem; wg.Done() }()
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					_ = e.Resign(ctx)
				}()
			}
			wg.Wait()
			_ = s.Close()
			<-watched
		},
	}
}

// candidateElectors starts n electors of one resource through one client,
// at the default options: all on one backend when oneBackend, each on a
// backend of its own otherwise.
func candidateElectors(b *testing.B, endpoint string, n int, oneBackend bool) func(chan<- benchscale.Led) benchscale.Pool {
	return func(leaders chan<- benchscale.Led) benchscale.Pool {
		counter := newRPCCounter()
		client := newClient(b, endpoint, counter.install)
		be, err := NewBackend(client, Options{Options: election.Options{Logger: quiet}})
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
				el, err = New(client, Options{Options: o})
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
			Requests: counter.total,
			Stop:     func() { started.Stop(b, nil, be.Close) },
		}
	}
}

// candidateConcurrency starts n campaigners of one election through one
// client, each with a concurrency.Session of its own (TTL 15 s); each
// resigns when released and campaigns again.
func candidateConcurrency(b *testing.B, endpoint string, n int) func(chan<- benchscale.Led) benchscale.Pool {
	return func(leaders chan<- benchscale.Led) benchscale.Pool {
		counter := newRPCCounter()
		client := newClient(b, endpoint, counter.install)
		prefix := DefaultPrefix("scale-candidates-concurrency")
		ctx, cancel := context.WithCancel(context.Background())
		release := make([]chan struct{}, n)
		sessions := make([]*concurrency.Session, n)
		var wg sync.WaitGroup
		for i := range release {
			s, err := concurrency.NewSession(client, concurrency.WithTTL(int(scaleTTL/time.Second)))
			if err != nil {
				b.Fatal(err)
			}
			sessions[i] = s
			release[i] = make(chan struct{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := concurrency.NewElection(s, prefix)
				for {
					if err := e.Campaign(ctx, fmt.Sprint("c", i)); err != nil {
						return
					}
					select {
					case leaders <- benchscale.Led{ID: i, At: time.Now()}:
					default:
					}
					select {
					case <-release[i]:
						if err := e.Resign(ctx); err != nil {
							return
						}
					case <-ctx.Done():
						return
					}
				}
			}()
		}
		return benchscale.Pool{
			Release:  func(i int) error { release[i] <- struct{}{}; return nil },
			Requests: counter.total,
			Stop: func() {
				cancel()
				wg.Wait()
				for _, s := range sessions {
					_ = s.Close()
				}
			},
		}
	}
}

// candidateFloor times the store's own part of a handover, which no
// recipe can go below: a write (the leader's key deleted) and its event on
// a watch created before, which tells the next in line that it leads. The
// electors recipe's n candidates run meanwhile, where they only wait: the
// member and the process are as busy as in that recipe, less the
// handovers' own work.
func candidateFloor(b *testing.B, endpoint string, n int) func(chan<- benchscale.Led) benchscale.Pool {
	return func(leaders chan<- benchscale.Led) benchscale.Pool {
		waiting := candidateElectors(b, endpoint, n, true)(make(chan benchscale.Led, n+16))
		counter := newRPCCounter()
		client := newClient(b, endpoint, counter.install)
		key := DefaultPrefix("scale-candidates-floor")
		ctx, cancel := context.WithCancel(context.Background())
		wch := client.Watch(ctx, key, clientv3.WithCreatedNotify())
		if wr := <-wch; !wr.Created {
			b.Fatalf("watch %s: %v", key, wr.Err())
		}
		seen := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for wr := range wch {
				for range wr.Events {
					select {
					case seen <- struct{}{}:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
		leaders <- benchscale.Led{ID: 0, At: time.Now()}
		return benchscale.Pool{
			Release: func(i int) error {
				if _, err := client.Put(ctx, key, fmt.Sprint("released by c", i)); err != nil {
					return err
				}
				<-seen
				leaders <- benchscale.Led{ID: 1 - i, At: time.Now()}
				return nil
			},
			Requests: func() int64 { return waiting.Requests() + counter.total() },
			Stop: func() {
				cancel()
				<-done
				waiting.Stop()
			},
		}
	}
}
