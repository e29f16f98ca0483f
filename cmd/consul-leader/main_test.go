//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary is also the command the runners run, when these
// variables are set (see childMain).
const (
	childLogEnv  = "RUNNER_TEST_LOG"  // the shared file the commands append to
	childNameEnv = "RUNNER_TEST_NAME" // which runner's command this is
	childModeEnv = "RUNNER_TEST_MODE" // what it does; see childMain
)

// runnerBin is the consul-leader binary built by TestMain, with -race when
// the tests run with it; plainBin is built without, for the failover
// rounds, whose timing the race detector's slowdown would distort.
var runnerBin, plainBin string

func TestMain(m *testing.M) {
	if os.Getenv(childLogEnv) != "" {
		os.Exit(childMain())
	}
	dir, err := os.MkdirTemp("", "consul-leader-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// A program built with -race sleeps a second at its exit, to let other
	// goroutines report; the runners, their watchdogs and their commands
	// must exit at once, or the grace would run out.
	_ = os.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	runnerBin = filepath.Join(dir, "consul-leader")
	plainBin = runnerBin
	builds := [][]string{{"build", "-o", runnerBin}}
	if raceEnabled {
		plainBin = filepath.Join(dir, "consul-leader-norace")
		builds = [][]string{{"build", "-race", "-o", runnerBin}, {"build", "-o", plainBin}}
	}
	for _, args := range builds {
		build := exec.Command("go", append(args, ".")...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building consul-leader:", err)
			_ = os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// childMain is the command of the tests' runners. It appends one line per
// event to the file $RUNNER_TEST_LOG, each a single write with O_APPEND:
//
//	start NAME PID MONO TERM ID RESOURCE
//	tick NAME PID MONO          (every tickEvery while it runs)
//	sig NAME PID MONO SIGNO     (a signal it received)
//	stop NAME PID MONO          (on SIGTERM or SIGINT, just before it exits)
//
// MONO is CLOCK_MONOTONIC in nanoseconds, shared by every process. Modes
// ($RUNNER_TEST_MODE): "" runs until SIGTERM/SIGINT and exits 0;
// "exit=N" exits with N after a tick; "ignore" ignores SIGTERM and SIGINT
// (for SIGKILL); "code=N" exits with N on SIGTERM/SIGINT.
func childMain() int {
	f, err := os.OpenFile(os.Getenv(childLogEnv), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 99
	}
	name, pid := os.Getenv(childNameEnv), os.Getpid()
	record := func(kind string, extra ...any) {
		line := fmt.Sprintf("%s %s %d %d", kind, name, pid, int64(monoNow()))
		for _, x := range extra {
			line += fmt.Sprintf(" %v", x)
		}
		_, _ = f.WriteString(line + "\n")
	}
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	record("start", os.Getenv("LEADER_TERM"), os.Getenv("LEADER_ID"), os.Getenv("LEADER_RESOURCE"))
	mode := os.Getenv(childModeEnv)
	if n, ok := modeArg(mode, "exit="); ok {
		time.Sleep(tickEvery)
		record("tick")
		return n
	}
	tick := time.NewTicker(tickEvery)
	for {
		select {
		case <-tick.C:
			record("tick")
		case s := <-sigs:
			sig := s.(syscall.Signal)
			record("sig", int(sig))
			if (sig == syscall.SIGTERM || sig == syscall.SIGINT) && mode != "ignore" {
				record("stop")
				n, _ := modeArg(mode, "code=")
				return n
			}
		}
	}
}

// tickEvery is how often a test command records that it runs.
const tickEvery = 10 * time.Millisecond

func modeArg(mode, prefix string) (int, bool) {
	if len(mode) <= len(prefix) || mode[:len(prefix)] != prefix {
		return 0, false
	}
	n, err := strconv.Atoi(mode[len(prefix):])
	return n, err == nil
}
