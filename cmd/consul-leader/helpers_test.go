//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// event is a line of a test command's log (see childMain).
type event struct {
	kind, name string
	pid        int
	at         monoTime
	rest       []string
}

// readLog reads the commands' log at path.
func readLog(t testing.TB, path string) []event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []event
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 {
			continue // a line being written
		}
		pid, err1 := strconv.Atoi(f[2])
		at, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad log line %q", sc.Text())
		}
		out = append(out, event{kind: f[0], name: f[1], pid: pid, at: monoTime(at), rest: f[4:]})
	}
	return out
}

// run is one run of a test command: from its start to its last record.
type run struct {
	name       string
	pid        int
	term       uint64
	start, end monoTime
	stopped    bool  // it recorded its stop
	signals    []int // the signals it recorded
}

// runs returns the commands' runs in the order of their starts.
func runs(events []event) []*run {
	byPID := map[int]*run{}
	var out []*run
	for _, e := range events {
		r := byPID[e.pid]
		if r == nil {
			r = &run{name: e.name, pid: e.pid, start: e.at, end: e.at}
			byPID[e.pid] = r
			out = append(out, r)
		}
		r.start, r.end = min(r.start, e.at), max(r.end, e.at)
		switch e.kind {
		case "start":
			if len(e.rest) > 0 {
				r.term, _ = strconv.ParseUint(e.rest[0], 10, 64)
			}
		case "stop":
			r.stopped = true
		case "sig":
			if len(e.rest) > 0 {
				n, _ := strconv.Atoi(e.rest[0])
				r.signals = append(r.signals, n)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out
}

// overlaps returns a description of every pair of runs that overlap.
func overlaps(rs []*run) []string {
	var out []string
	for i := range rs {
		for j := i + 1; j < len(rs) && rs[j].start <= rs[i].end; j++ {
			out = append(out, fmt.Sprintf("%s's command (pid %d, term %d) ran until %v after %s's (pid %d, term %d) started",
				rs[i].name, rs[i].pid, rs[i].term, rs[i].end.sub(rs[j].start), rs[j].name, rs[j].pid, rs[j].term))
		}
	}
	return out
}

// runnerProc is a consul-leader run process of a test.
type runnerProc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	code int // once done
}

// startRunner starts consul-leader run as runner name, whose command is
// this test binary in mode (see childMain), logging to log.
func startRunner(t testing.TB, name, log, mode string, args ...string) *runnerProc {
	t.Helper()
	return startRunnerBin(t, runnerBin, name, log, mode, args...)
}

// startRunnerBin starts the runner binary bin, as startRunner does.
func startRunnerBin(t testing.TB, bin, name, log, mode string, args ...string) *runnerProc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	all := append([]string{"run"}, args...)
	all = append(all, "--", self)
	cmd := exec.Command(bin, all...)
	cmd.Env = append(os.Environ(), childLogEnv+"="+log, childNameEnv+"="+name, childModeEnv+"="+mode)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &runnerProc{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		<-p.done
		if t.Failed() {
			t.Logf("runner %s (pid %d) output:\n%s", name, cmd.Process.Pid, out.String())
		}
	})
	return p
}

func (p *runnerProc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

func (p *runnerProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
	_ = p.cmd.Process.Kill()
}

// wait waits up to d for the runner to exit, and returns its exit code.
func (p *runnerProc) wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		t.Fatalf("runner %s still runs after %v:\n%s", p.name, d, p.out.String())
		return -1
	}
}

// waitFor polls cond every 10 ms until it is true, or fails t after d.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// running returns the run that has not stopped, if exactly one has started
// last and runs: the leader's command.
func running(rs []*run) *run {
	if len(rs) == 0 || rs[len(rs)-1].stopped {
		return nil
	}
	return rs[len(rs)-1]
}

func logPath(t testing.TB) string { return filepath.Join(t.TempDir(), "commands.log") }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
