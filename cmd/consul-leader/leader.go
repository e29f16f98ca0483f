//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os/signal"
	"syscall"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/election"
)

// leaderMain prints who leads, once or at every change, and returns the
// exit code.
func leaderMain(ctx context.Context, cfg leaderConfig, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	opts := cfg.opts
	opts.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	el, err := backends.Open(ctx, cfg.store, opts)
	if err != nil {
		return fail(stderr, "leader", openError(err))
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = el.Close(cctx)
	}()
	p := printer{w: stdout, json: cfg.json}
	if !cfg.watch {
		l, err := el.Leader(ctx)
		if err != nil {
			return fail(stderr, "leader", err)
		}
		p.print(l)
		if l.LeaderID == "" {
			return exitNoLeader
		}
		return 0
	}
	return watchLeader(ctx, el, cfg.interval, p, stderr)
}

// watchLeader reads the leadership every interval until ctx ends, and
// prints it when it changed. A failed read is reported on stderr, once
// until a read succeeds again.
func watchLeader(ctx context.Context, el *election.Elector, interval time.Duration, p printer, stderr io.Writer) int {
	var last *election.Leadership
	failing := false
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		l, err := el.Leader(ctx)
		switch {
		case ctx.Err() != nil:
			return 0
		case err != nil:
			if !failing {
				fmt.Fprintf(stderr, "consul-leader leader: %v\n", err)
			}
			failing = true
		default:
			failing = false
			if last == nil || last.LeaderID != l.LeaderID || last.Term != l.Term {
				p.print(l)
				last = &l
			}
		}
		select {
		case <-ctx.Done():
			return 0
		case <-tick.C:
		}
	}
}

// printer prints leaderships as text or JSON lines.
type printer struct {
	w    io.Writer
	json bool
}

func (p printer) print(l election.Leadership) {
	if p.json {
		b, _ := json.Marshal(struct {
			Leader string `json:"leader"`
			Term   uint64 `json:"term"`
		}{l.LeaderID, l.Term})
		fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	if l.LeaderID == "" {
		fmt.Fprintln(p.w, "no leader")
		return
	}
	fmt.Fprintf(p.w, "%s (term %d)\n", l.LeaderID, l.Term)
}
