//go:build linux

package main

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// TestTermEndStopsAtOnce: when the term's context ends, the runner stops
// the command at once, long before the watchdog's deadline would, and its
// handler returns only once the command is gone.
func TestTermEndStopsAtOnce(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := logPath(t)
	t.Setenv(childLogEnv, log) // inherited by the watchdog and the command
	t.Setenv(childNameEnv, "T")
	t.Setenv(childModeEnv, "")
	b, err := newBudget(time.Minute, 0, false) // the watchdog's deadline: 5.4 s after each heartbeat
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &runner{
		cfg:  runConfig{budget: b, command: []string{self}},
		exe:  runnerBin,
		log:  slog.New(slog.DiscardHandler),
		stop: cancel,
	}
	returned := make(chan error, 1)
	go func() {
		returned <- r.lead(ctx, election.Leadership{IsLeader: true, Term: 7, LeaderID: "me", Resource: "res"})
	}()
	started := waitRun(t, log, 1)
	if started.term != 7 {
		t.Errorf("LEADER_TERM %d, want 7", started.term)
	}
	at := monoNow()
	cancel()
	select {
	case err := <-returned:
		if err != nil {
			t.Errorf("lead: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not return after its term ended")
	}
	rs := runs(readLog(t, log))
	if !rs[0].stopped {
		t.Fatal("the handler returned before the command stopped")
	}
	if d := rs[0].end.sub(at); d > time.Second {
		t.Errorf("the command stopped %v after the end of the term, want at once", d)
	}
}
