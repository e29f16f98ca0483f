//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/election"
)

// forwarded are the signals the runner passes to the command; SIGTERM and
// SIGINT also stop the runner.
var forwarded = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

// errStalled gives a term up whose command the watchdog stopped because
// the runner did not confirm the term in time.
var errStalled = errors.New("the watchdog stopped the command: the runner did not confirm its term in time (was it stopped or starved?)")

// runner runs the command while its elector leads.
type runner struct {
	cfg  runConfig
	exe  string
	el   *election.Elector
	log  *slog.Logger
	stop context.CancelFunc // ends the campaign

	mu       sync.Mutex
	cur      *child // the command's run, while there is one
	stopping bool   // SIGTERM or SIGINT received, or the command exited for good
	stopSig  syscall.Signal
	code     int // the exit code
}

// runMain runs cfg until a stop, and returns the exit code.
func runMain(ctx context.Context, cfg runConfig, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	exe, err := os.Executable()
	if err != nil {
		return fail(stderr, "run", fmt.Errorf("cannot find this program to run the watchdog: %w", err))
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	opts := cfg.opts
	opts.Logger = log
	el, err := backends.Open(ctx, cfg.store, opts)
	if err != nil {
		return fail(stderr, "run", openError(err))
	}
	r := &runner{cfg: cfg, exe: exe, el: el, log: log, stop: stop}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	var wg sync.WaitGroup
	wg.Go(func() { r.signals(ctx, sigs) })
	log.Info("campaigning", "resource", cfg.opts.Resource, "ttl", cfg.budget.ttl, "grace", cfg.budget.grace)
	err = el.Run(ctx, r.handle)
	stop()
	wg.Wait()
	if err != nil {
		log.Error("the campaign ended with an error", "err", err)
		if r.exitCode() == 0 {
			return exitFailure
		}
	}
	return r.exitCode()
}

// signals forwards the runner's signals until ctx ends.
func (r *runner) signals(ctx context.Context, sigs <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-sigs:
			sig := s.(syscall.Signal)
			if sig == syscall.SIGTERM || sig == syscall.SIGINT {
				r.shutdown(sig)
				continue
			}
			r.mu.Lock()
			if r.cur != nil {
				r.cur.signal(sig)
			}
			r.mu.Unlock()
		}
	}
}

// shutdown stops the command with sig, if it runs, and ends the campaign.
func (r *runner) shutdown(sig syscall.Signal) {
	r.mu.Lock()
	first := !r.stopping
	r.stopping = true
	r.stopSig = sig
	if r.cur != nil {
		if first {
			r.cur.stop(sig)
		} else {
			r.cur.signal(sig)
		}
	}
	r.mu.Unlock()
	if first {
		r.log.Info("stopping", "signal", sig)
	}
	r.stop()
}

func (r *runner) exitCode() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.code
}

// handle is the elector's handler: it runs the command for each term.
func (r *runner) handle(ctx context.Context, l election.Leadership) error {
	if !l.IsLeader {
		switch {
		case l.Err != nil:
			r.log.Debug("store", "err", l.Err) // the elector logs it as a warning
		case l.LeaderID != "":
			r.log.Debug("following", "leader", l.LeaderID, "term", l.Term)
		}
		return nil
	}
	return r.lead(ctx, l)
}

// lead runs the command for the term l, whose context is ctx, until the
// term ends or the command exits.
func (r *runner) lead(ctx context.Context, l election.Leadership) error {
	b := r.cfg.budget
	t := monoNow()
	if ctx.Err() != nil { // the term's own context: it reads the clock
		return nil
	}
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		return nil
	}
	c, err := startChild(r.exe, b, r.cfg.command, r.env(l), b.killBy(t, termLeft(ctx)))
	if err != nil {
		r.mu.Unlock()
		return fmt.Errorf("consul-leader: %w", err)
	}
	r.cur = c
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.cur = nil
		r.mu.Unlock()
	}()
	r.log.Info("leading: command started", "term", l.Term, "id", l.LeaderID)
	tick := time.NewTicker(b.heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			t := monoNow()
			if ctx.Err() == nil {
				c.alive(b.killBy(t, termLeft(ctx)))
				continue
			}
		case <-ctx.Done():
		case e := <-c.done:
			return r.exited(ctx, l, e)
		}
		// The term ended: SIGTERM now, SIGKILL after the grace.
		c.stop(syscall.SIGTERM)
		e := <-c.done
		r.log.Info("term ended: command stopped", "term", l.Term, "cause", context.Cause(ctx), "code", e.code)
		r.ended(e)
		return nil
	}
}

// termLeft returns how long the term whose context is ctx has before its
// step-down deadline, from now: read after the runner's reading t of the
// clock, it is at most the deadline's distance from t. A context of no
// term has none.
func termLeft(ctx context.Context) time.Duration {
	d, ok := election.TermDeadline(ctx)
	if !ok {
		return 0
	}
	return time.Until(d)
}

// ended records the code of a command stopped at the end of its term: the
// runner's exit code if the runner is stopping.
func (r *runner) ended(e childExit) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopping {
		r.code = e.code
	}
}

// exited handles a command that ended while the term went on.
func (r *runner) exited(ctx context.Context, l election.Leadership, e childExit) error {
	r.mu.Lock()
	stopping := r.stopping
	if stopping {
		r.code = e.code
	}
	r.mu.Unlock()
	switch {
	case stopping:
		return nil // the campaign ends; the term with it
	case ctx.Err() != nil && (e.reason == reasonExpired || e.reason == reasonLate):
		r.log.Info("term ended: command stopped", "term", l.Term, "cause", context.Cause(ctx), "code", e.code)
		return nil
	case e.reason == reasonExpired || e.reason == reasonLate:
		r.log.Warn("term given up", "term", l.Term, "err", errStalled)
		return errStalled
	case e.reason != reasonExited && e.reason != reasonExec:
		return fmt.Errorf("consul-leader: the watchdog ended (%s) with the command's code %d", e.reason, e.code)
	case r.cfg.restart:
		r.log.Info("command exited: releasing, to run it again in the next term", "term", l.Term, "code", e.code)
		if err := r.el.Release(context.Background()); err != nil {
			return err
		}
		return nil
	}
	r.log.Info("command exited: releasing and exiting", "term", l.Term, "code", e.code)
	r.mu.Lock()
	r.stopping = true
	r.code = e.code
	r.mu.Unlock()
	r.stop()
	return nil
}

// env is the command's environment for the term l.
func (r *runner) env(l election.Leadership) []string {
	set := map[string]string{
		"LEADER_TERM":     strconv.FormatUint(l.Term, 10),
		"LEADER_ID":       l.LeaderID,
		"LEADER_RESOURCE": l.Resource,
	}
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !has(set, k) {
			env = append(env, kv)
		}
	}
	for k, v := range set {
		env = append(env, k+"="+v)
	}
	return env
}

func has(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

// openError marks an error of backends.Open that is about its input (the
// URL, the options) as bad input.
func openError(err error) error {
	var oe *election.OptionError
	if errors.Is(err, backends.ErrBadURL) || errors.As(err, &oe) {
		return &usageError{err.Error()}
	}
	return err
}
