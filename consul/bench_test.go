package consul_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// BenchmarkConsul measures, on one Consul agent and with three candidates:
// the graceful handover (from the leader's release to the next leader's
// handler) of the electors, of electors with Options.Handoff and of
// api.Lock; the failover after a leader's crash with plain and with
// check-bound sessions; and the requests per second an idle election costs
// Consul, electors (with and without Handoff) against api.Lock at matched
// settings. Run it with
//
//	go test -run '^$' -bench . -benchtime 200x ./consul/
//
// The handovers take b.N samples of each, in turn; the failovers take a fixed number of
// samples (one of about 20 s for plain sessions, five for check-bound ones)
// and the idle load a window of 60 s, whatever b.N is.
func BenchmarkConsul(b *testing.B) {
	srv := testserver.StartConsul(b, testserver.ConsulOptions{})
	b.Run("Handover", func(b *testing.B) { benchHandover(b, srv) })
	b.Run("CrashFailover/plain", func(b *testing.B) { benchCrash(b, srv, "lockDelay=none", 10*time.Second, 1) })
	b.Run("CrashFailover/check-bound", func(b *testing.B) { benchCrash(b, srv, "checkTTL=1s", time.Second, 5) })
	b.Run("CrashFailover/check-bound-handoff", func(b *testing.B) { benchCrash(b, srv, "checkTTL=1s&handoff=true", time.Second, 5) })
	b.Run("IdleLoad", func(b *testing.B) { benchIdle(b, srv) })
}

// handoverPause lets the released candidate campaign again (after its
// RetryInterval) before the next handover; it is not timed.
const handoverPause = 60 * time.Millisecond

type led struct {
	id int
	at time.Time
}

// handover performs one graceful handover and returns its duration: from
// the release to the next leader's handler, or to api.Lock's return.
type handover func() time.Duration

// benchHandover takes handovers of the electors, with and without Handoff,
// and of api.Lock in turn, so that all see the same load on a shared
// machine.
func benchHandover(b *testing.B, srv *testserver.ConsulServer) {
	ours := electorHandover(b, srv, false)
	handoff := electorHandover(b, srv, true)
	theirs := apiLockHandover(b, srv)
	oursSamples := make([]time.Duration, 0, b.N)
	handoffSamples := make([]time.Duration, 0, b.N)
	theirsSamples := make([]time.Duration, 0, b.N)
	time.Sleep(handoverPause)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		oursSamples = append(oursSamples, ours())
		handoffSamples = append(handoffSamples, handoff())
		theirsSamples = append(theirsSamples, theirs())
	}
	b.StopTimer()
	b.ReportMetric(0, "ns/op") // three handovers and three pauses per iteration
	reportLatency(b, "elector", oursSamples)
	reportLatency(b, "handoff", handoffSamples)
	reportLatency(b, "api.Lock", theirsSamples)
}

// electorHandover starts three electors of one resource.
func electorHandover(b *testing.B, srv *testserver.ConsulServer, handoff bool) handover {
	resource := fmt.Sprintf("bench-handover-%d-%t", b.N, handoff)
	leaders := make(chan led, 16)
	els := make([]*election.Elector, 3)
	for i := range els {
		o := candidate(b, srv, resource, fmt.Sprint("c", i))
		o.RetryInterval = handoverPause / 3
		o.Handoff = handoff
		el, err := consul.New(o.client, o.Options)
		if err != nil {
			b.Fatal(err)
		}
		els[i] = el
		err = el.Start(context.Background(), func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				leaders <- led{i, time.Now()}
				<-ctx.Done()
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = el.Close(context.Background()) })
	}
	cur := <-leaders
	return func() time.Duration {
		start := time.Now()
		if err := els[cur.id].Release(context.Background()); err != nil {
			b.Fatal(err)
		}
		next := <-leaders
		cur = next
		b.StopTimer()
		time.Sleep(handoverPause)
		b.StartTimer()
		return next.at.Sub(start)
	}
}

// apiLockHandover starts three goroutines contending for one key with
// api.Lock, each with a client of its own.
func apiLockHandover(b *testing.B, srv *testserver.ConsulServer) handover {
	key := consul.DefaultKey(fmt.Sprintf("bench-apilock-%d", b.N))
	leaders := make(chan led, 16)
	release := make([]chan struct{}, 3)
	stop := make(chan struct{})
	done := make(chan struct{})
	for i := range release {
		release[i] = make(chan struct{})
		client := newClient(b, srv.Addr, "")
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				lock, err := client.LockOpts(&api.LockOptions{
					Key: key, SessionTTL: "10s", LockDelay: time.Millisecond,
					LockWaitTime: time.Second, // how soon a waiting Lock sees stop
				})
				if err != nil {
					b.Error(err)
					return
				}
				lost, err := lock.Lock(stop)
				if err != nil || lost == nil {
					if err != nil {
						b.Error(err)
					}
					return
				}
				leaders <- led{i, time.Now()}
				select {
				case <-release[i]:
				case <-stop:
				}
				_ = lock.Unlock()
			}
		}()
	}
	b.Cleanup(func() {
		close(stop)
		for range release {
			<-done
		}
	})
	cur := <-leaders
	return func() time.Duration {
		start := time.Now()
		release[cur.id] <- struct{}{}
		next := <-leaders
		cur = next
		b.StopTimer()
		time.Sleep(handoverPause)
		b.StartTimer()
		return next.at.Sub(start)
	}
}

// benchCrash cuts the leader's connection, as a crash would, and measures
// the time until the next leader's handler runs. The cut candidate is
// closed and replaced after every sample.
func benchCrash(b *testing.B, srv *testserver.ConsulServer, query string, ttl time.Duration, n int) {
	resource := fmt.Sprintf("bench-crash-%s-%d", strings.NewReplacer("=", "-", "&", "-").Replace(query), b.N)
	leaders := make(chan led, 16)
	type cand struct {
		el    *election.Elector
		proxy *testserver.Proxy
	}
	var cands []cand
	add := func() {
		p := testserver.NewProxy(b, srv.Addr)
		u := &url.URL{Scheme: consul.Scheme, Host: p.Addr(), RawQuery: query}
		id := len(cands)
		el, err := consul.OpenURL(context.Background(), u, election.Options{Resource: resource, ID: fmt.Sprint("c", id), TTL: ttl})
		if err != nil {
			b.Fatal(err)
		}
		err = el.Start(context.Background(), func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				leaders <- led{id, time.Now()}
				<-ctx.Done()
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		cands = append(cands, cand{el, p})
	}
	for range 3 {
		add()
	}
	defer func() {
		for _, c := range cands {
			c.proxy.Heal()
			_ = c.el.Close(context.Background())
		}
	}()
	cur := <-leaders
	samples := make([]time.Duration, 0, n)
	b.ResetTimer()
	for i := 0; i < n; i++ {
		time.Sleep(ttl / 2) // crash at some point between two renewals
		crashed := time.Now()
		cands[cur.id].proxy.Cut()
		next := <-leaders
		samples = append(samples, next.at.Sub(crashed))
		b.StopTimer()
		old := cands[cur.id]
		old.proxy.Heal()
		_ = old.el.Close(context.Background())
		add()
		cur = next
		b.StartTimer()
	}
	b.StopTimer()
	slices.Sort(samples)
	b.ReportMetric(0, "ns/op") // not a per-iteration cost
	b.ReportMetric(ms(samples[len(samples)/2]), "p50-ms")
	b.ReportMetric(ms(samples[len(samples)-1]), "max-ms")
}

// countingTransport counts the requests sent through it.
type countingTransport struct {
	http.Transport
	n atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.Transport.RoundTrip(r)
}

// benchIdle counts the requests of one leader and two followers left idle,
// electors and api.Lock side by side, at matched settings: session TTL 15 s
// renewed every TTL/2 (api.Lock's RenewPeriodic), followers blocking 15 s
// at a time (api.Lock's LockWaitTime).
func benchIdle(b *testing.B, srv *testserver.ConsulServer) {
	const (
		ttl    = 15 * time.Second
		wait   = 15 * time.Second
		window = 60 * time.Second
	)
	ours, handoff, theirs := &countingTransport{}, &countingTransport{}, &countingTransport{}
	defer ours.CloseIdleConnections()
	defer handoff.CloseIdleConnections()
	defer theirs.CloseIdleConnections()
	newClient := func(tr *countingTransport) *api.Client {
		c, err := api.NewClient(&api.Config{Address: srv.Addr, HttpClient: &http.Client{Transport: tr}})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	oursClient, handoffClient, theirsClient := newClient(ours), newClient(handoff), newClient(theirs)
	resource := fmt.Sprintf("bench-idle-%d", b.N)
	for _, withHandoff := range []bool{false, true} {
		client, res := oursClient, resource
		if withHandoff {
			client, res = handoffClient, resource+"-handoff"
		}
		for i := range 3 {
			el, err := consul.New(client, consul.Options{
				Options: election.Options{Resource: res, ID: fmt.Sprint("c", i), TTL: ttl, RenewInterval: ttl / 2, WaitTime: wait},
				Handoff: withHandoff,
			})
			if err != nil {
				b.Fatal(err)
			}
			if err := el.Start(context.Background(), func(context.Context, election.Leadership) error { return nil }); err != nil {
				b.Fatal(err)
			}
			defer el.Close(context.Background())
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{}, 3)
	for range 3 {
		go func() {
			defer func() { done <- struct{}{} }()
			lock, err := theirsClient.LockOpts(&api.LockOptions{
				Key: consul.DefaultKey(resource + "-apilock"), SessionTTL: ttl.String(), LockWaitTime: wait,
			})
			if err != nil {
				b.Error(err)
				return
			}
			if lost, err := lock.Lock(stop); err == nil && lost != nil {
				<-stop
				_ = lock.Unlock()
			}
		}()
	}
	time.Sleep(2 * time.Second) // settle: one leader, two followers each
	b.ResetTimer()
	o0, h0, t0 := ours.n.Load(), handoff.n.Load(), theirs.n.Load()
	time.Sleep(window)
	o1, h1, t1 := ours.n.Load(), handoff.n.Load(), theirs.n.Load()
	b.StopTimer()
	close(stop)
	for range 3 {
		<-done
	}
	b.ReportMetric(0, "ns/op") // not a per-iteration cost
	b.ReportMetric(float64(o1-o0)/window.Seconds(), "elector-req/s")
	b.ReportMetric(float64(h1-h0)/window.Seconds(), "handoff-req/s")
	b.ReportMetric(float64(t1-t0)/window.Seconds(), "api.Lock-req/s")
}

func reportLatency(b *testing.B, name string, samples []time.Duration) {
	slices.Sort(samples)
	b.ReportMetric(ms(samples[len(samples)/2]), name+"-p50-ms")
	b.ReportMetric(ms(samples[len(samples)*99/100]), name+"-p99-ms")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
