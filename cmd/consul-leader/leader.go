//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
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
	if cfg.intervalGiven {
		fmt.Fprintln(stderr, "consul-leader leader: --interval is deprecated and has no effect: "+
			"--watch waits on the store's blocking reads and prints each change at once; "+
			"the URL parameter waitTime bounds one read (default 5s)")
	}
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
	return watchLeader(ctx, el, p, stderr)
}

// Retry delays of leader --watch while the store cannot be read: the
// first, doubled after each further failure up to the last, each moved by
// up to ±20 % so that many watchers do not retry in step.
const (
	watchRetryFirst = 100 * time.Millisecond
	watchRetryMax   = 5 * time.Second
)

// leaderWatcher is what watchLeader reads the leadership from:
// *election.Elector.
type leaderWatcher interface {
	WatchLeader(ctx context.Context, after uint64, wait time.Duration) (election.Leadership, uint64, error)
}

// watchLeader follows the leadership with the store's blocking reads until
// ctx ends, and prints it at once whenever its leader or term changed. A
// blocking read that ends its wait with nothing new is followed by a read
// at once, which makes sure that the store still answers. A failed read is
// reported on stderr, once until a read succeeds again, and retried after a
// growing delay; the next read after a failure reads at once. It returns
// exit code 0.
func watchLeader(ctx context.Context, w leaderWatcher, p printer, stderr io.Writer) int {
	var (
		rev     uint64
		last    *election.Leadership
		fails   int
		retryIn time.Duration
		rng     = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	)
	for {
		l, r, err := w.WatchLeader(ctx, rev, 0)
		if ctx.Err() != nil {
			return 0
		}
		if err != nil {
			fails++
			retryIn = min(retryIn*2, watchRetryMax)
			if fails == 1 {
				retryIn = watchRetryFirst
				fmt.Fprintf(stderr, "consul-leader leader: %v (retrying until the store answers)\n", err)
			}
			rev = 0
			if !sleepCtx(ctx, time.Duration(float64(retryIn)*(0.8+0.4*rng.Float64()))) {
				return 0
			}
			continue
		}
		if fails > 0 {
			fmt.Fprintf(stderr, "consul-leader leader: the store answers again after %d failed reads\n", fails)
			fails = 0
		}
		// A wait that ended with nothing new is followed by a read at once:
		// a backend's blocking read may end its wait on what it last
		// heard, without a round trip, and so say nothing of a connection
		// that went silent; the read fails on it within its deadline.
		if rev != 0 && r == rev {
			r = 0
		}
		rev = r
		if last == nil || last.LeaderID != l.LeaderID || last.Term != l.Term {
			p.print(l)
			last = &l
		}
	}
}

// sleepCtx waits d, or until ctx ends; it reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
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
