package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/election/health"
	"github.com/consul-leader/consul-leader/memory"
	leaderprom "github.com/consul-leader/consul-leader/prometheus"
)

type config struct {
	handover   time.Duration // between two releases of the leader
	ttl        time.Duration
	candidates int
	resource   string
	logger     *slog.Logger
	out        io.Writer // where the elections are narrated
}

// candidate is one elector of the demo.
type candidate struct {
	id string
	el *election.Elector
}

// run serves the demo on ln until ctx ends, then closes every elector and
// the server.
func run(ctx context.Context, cfg config, ln net.Listener) error {
	if cfg.candidates < 1 {
		_ = ln.Close()
		return fmt.Errorf("-candidates must be at least 1, got %d", cfg.candidates)
	}
	if cfg.handover <= 0 {
		_ = ln.Close()
		return fmt.Errorf("-handover must be positive, got %v", cfg.handover)
	}
	reg := prometheus.NewRegistry()
	metrics, err := leaderprom.New(leaderprom.Options{})
	if err != nil {
		_ = ln.Close()
		return err
	}
	reg.MustRegister(metrics)
	metrics.Track(cfg.resource)

	// The liveness check of the candidates, fed by the same events.
	check, err := health.New(health.Options{TTL: cfg.ttl})
	if err != nil {
		_ = ln.Close()
		return err
	}

	store := memory.NewStore()
	var cs []*candidate
	defer func() { closeAll(cs) }()
	var mu sync.Mutex // orders the narration
	for i := 1; i <= cfg.candidates; i++ {
		id := fmt.Sprintf("node-%d", i)
		el, err := memory.New(store, election.Options{
			Resource:  cfg.resource,
			ID:        id,
			TTL:       cfg.ttl,
			Logger:    cfg.logger,
			Observers: []*election.Observer{metrics.Observer(), check.Observer()},
		})
		if err != nil {
			_ = ln.Close()
			return err
		}
		cs = append(cs, &candidate{id: id, el: el})
		err = el.Start(ctx, election.LeaderOnly(func(ctx context.Context, term uint64) error {
			mu.Lock()
			fmt.Fprintf(cfg.out, "%s leads, term %d\n", id, term)
			mu.Unlock()
			<-ctx.Done()
			mu.Lock()
			fmt.Fprintf(cfg.out, "%s stops leading, term %d: %v\n", id, term, context.Cause(ctx))
			mu.Unlock()
			return nil
		}))
		if err != nil {
			_ = ln.Close()
			return err
		}
	}

	srv := &http.Server{Handler: mux(reg, check, cs), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	handOver(ctx, cfg, store, cs, &mu)

	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// mux serves the metrics of reg, the liveness check, and a readiness check
// of each candidate that is ready only while it leads.
func mux(reg *prometheus.Registry, check *health.Check, cs []*candidate) *http.ServeMux {
	m := http.NewServeMux()
	m.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	m.Handle("GET /healthz", check)
	for _, c := range cs {
		m.Handle("GET /leader/"+c.id, health.LeaderHandler(c.el))
	}
	return m
}

// handOver makes the leadership move every cfg.handover, until ctx ends:
// twice the leader releases it, the third time it is cut off from the store
// (its requests hang), steps down by itself before its TTL runs out, and
// another candidate takes over once the store expires its session; its
// connection heals at the first step two TTLs later.
func handOver(ctx context.Context, cfg config, store *memory.Store, cs []*candidate, mu *sync.Mutex) {
	t := time.NewTicker(cfg.handover)
	defer t.Stop()
	cut, cutAt := "", time.Time{}
	defer func() {
		if cut != "" {
			store.Heal(cut)
		}
	}()
	say := func(format string, args ...any) {
		mu.Lock()
		fmt.Fprintf(cfg.out, format+"\n", args...)
		mu.Unlock()
	}
	for step := 1; ; step++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if cut != "" && time.Since(cutAt) >= 2*cfg.ttl {
			say("%s is connected again", cut)
			store.Heal(cut)
			cut = ""
		}
		for _, c := range cs {
			if !c.el.IsLeader() || c.id == cut {
				continue // a leader cut off steps down by itself
			}
			if step%3 == 0 && cut == "" {
				say("%s is cut off from the store", c.id)
				store.Cut(c.id)
				cut, cutAt = c.id, time.Now()
				break
			}
			say("%s releases", c.id)
			rctx, cancel := context.WithTimeout(ctx, cfg.ttl)
			_ = c.el.Release(rctx)
			cancel()
			break
		}
	}
}

// closeAll closes the followers first and the leader last, so that closing
// hands nothing over.
func closeAll(cs []*candidate) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, c := range cs {
		if !c.el.IsLeader() {
			_ = c.el.Close(ctx)
		}
	}
	for _, c := range cs {
		_ = c.el.Close(ctx) // a second Close returns at once
	}
}
