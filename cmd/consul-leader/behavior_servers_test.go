//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance/testserver"
)

// redisStore starts a Redis server for one test and returns its URL, with
// a TTL of 5 s: the watchdog stops a command once its runner has not
// confirmed the term for a while (at most a quarter of the TTL, plus the
// step-down margin less a tenth of it: 1.7 s at 5 s, 680 ms at 2 s), which
// a runner of a race-detector build on a busy machine can miss at 2 s, and
// these tests are not about that.
func redisStore(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("real-server test skipped in -short mode")
	}
	t.Parallel()
	return "redis://" + testserver.StartRedis(t, testserver.RedisOptions{}).Addr() + "?ttl=5s"
}

// waitRun waits for the n-th run (from 1) of the commands in log.
func waitRun(t *testing.T, log string, n int) *run {
	t.Helper()
	var r *run
	waitFor(t, 20*time.Second, "command start", func() bool {
		rs := runs(readLog(t, log))
		if len(rs) >= n {
			r = rs[n-1]
		}
		return r != nil
	})
	return r
}

// leaderNow runs consul-leader leader once and returns its output and exit
// code.
func leaderNow(t *testing.T, url, resource string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := mainCode(context.Background(), []string{"leader", "--store", url, "--resource", resource}, &out, &errOut)
	return out.String() + errOut.String(), code
}

// TestSignals: the runner forwards SIGHUP and SIGUSR1 to its command, and
// on SIGTERM (or SIGINT) stops it with that signal, gives the leadership
// up and exits with the command's code. The command's environment names
// the term, the runner and the resource.
func TestSignals(t *testing.T) {
	url := redisStore(t)
	for _, stop := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		log := logPath(t)
		resource := "signals-" + strings.ToLower(stop.String()[:3])
		p := startRunner(t, "A", log, "code=7", "--store", url, "--resource", resource, "--id", "runner-a")
		r := waitRun(t, log, 1)
		start := readLog(t, log)[0]
		if r.term == 0 || !slices.Equal(start.rest[1:], []string{"runner-a", resource}) {
			t.Errorf("LEADER_TERM, LEADER_ID, LEADER_RESOURCE: %v, want a term, runner-a, %s", start.rest, resource)
		}
		if out, code := leaderNow(t, url, resource); code != 0 || !strings.Contains(out, "runner-a (term ") {
			t.Errorf("leader: %d %q", code, out)
		}
		p.signal(syscall.SIGHUP)
		waitFor(t, 5*time.Second, "SIGHUP forwarded", func() bool { return slices.Contains(runs(readLog(t, log))[0].signals, int(syscall.SIGHUP)) })
		p.signal(syscall.SIGUSR1)
		waitFor(t, 5*time.Second, "SIGUSR1 forwarded", func() bool { return slices.Contains(runs(readLog(t, log))[0].signals, int(syscall.SIGUSR1)) })
		p.signal(stop)
		if code := p.wait(t, 10*time.Second); code != 7 {
			t.Errorf("runner stopped by %v exited %d, want the command's 7", stop, code)
		}
		r = runs(readLog(t, log))[0]
		if !r.stopped || r.signals[len(r.signals)-1] != int(stop) {
			t.Errorf("command's signals %v, stopped %v: want it stopped by %v", r.signals, r.stopped, stop)
		}
		if out, code := leaderNow(t, url, resource); code != exitNoLeader {
			t.Errorf("leader after the stop: %d %q, want no leader (released)", code, out)
		}
	}
}

// TestGraceKill: a command that ignores SIGTERM gets SIGKILL after the
// grace, and the runner exits with 128+9.
func TestGraceKill(t *testing.T) {
	url := redisStore(t)
	log := logPath(t)
	p := startRunner(t, "A", log, "ignore", "--store", url, "--resource", "grace", "--grace", "100ms")
	waitRun(t, log, 1)
	p.signal(syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 128+int(syscall.SIGKILL) {
		t.Errorf("exit code %d, want %d", code, 128+int(syscall.SIGKILL))
	}
	var term, last monoTime
	for _, e := range readLog(t, log) {
		if e.kind == "sig" && term == 0 {
			term = e.at
		}
		last = e.at
	}
	if term == 0 || last.sub(term) > 100*time.Millisecond+tickEvery {
		t.Errorf("the command ran %v after SIGTERM, want at most the grace 100ms", last.sub(term))
	}
}

// TestRunnerKilled: a runner killed with SIGKILL leaves no command running:
// the watchdog stops it at once, long before the store frees the
// leadership.
func TestRunnerKilled(t *testing.T) {
	url := redisStore(t)
	log := logPath(t)
	p := startRunner(t, "A", log, "", "--store", url, "--resource", "killed")
	waitRun(t, log, 1)
	at := monoNow()
	p.kill()
	waitFor(t, 5*time.Second, "command stop", func() bool { return runs(readLog(t, log))[0].stopped })
	if d := runs(readLog(t, log))[0].end.sub(at); d > time.Second {
		t.Errorf("the command stopped %v after its runner was killed", d)
	}
}

// TestRunnerStall: a runner stopped (SIGSTOP) for less than it vouched for
// its term at its last heartbeat keeps its command, even past the
// step-down margin; a runner stopped for longer has its command stopped by
// the watchdog within the horizon plus the margin less the slack (TTL/4 +
// TTL/10 - TTL/100), however long its term had left.
func TestRunnerStall(t *testing.T) {
	url := redisStore(t)
	b, err := newBudget(5*time.Second, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	log := logPath(t)
	p := startRunner(t, "A", log, "", "--store", url, "--resource", "stall")
	waitRun(t, log, 1)

	// 800 ms: more than the margin less the slack and the grace (325 ms),
	// less than the horizon added (1.575 s). The renewals every TTL/3 keep
	// the term's deadline more than the horizon away.
	p.signal(syscall.SIGSTOP)
	time.Sleep(800 * time.Millisecond)
	p.signal(syscall.SIGCONT)
	time.Sleep(500 * time.Millisecond)
	if rs := runs(readLog(t, log)); len(rs) != 1 || rs[0].stopped {
		t.Fatalf("the command was stopped by a stall of 800 ms of its runner (%d runs)", len(rs))
	}

	at := monoNow()
	p.signal(syscall.SIGSTOP)
	defer p.signal(syscall.SIGCONT)
	waitFor(t, 10*time.Second, "command stop", func() bool { return runs(readLog(t, log))[0].stopped })
	limit := b.horizon + b.margin - b.slack
	if d := runs(readLog(t, log))[0].end.sub(at); d > limit {
		t.Errorf("the command of a stopped runner stopped %v after the runner did, past the horizon and the margin (%v)", d, limit)
	}
}

// TestExitReleases: a command that exits by itself ends the run with its
// code and gives the leadership up at once, so that the other runner's
// command starts long before the TTL.
func TestExitReleases(t *testing.T) {
	url := redisStore(t)
	log := logPath(t)
	a := startRunner(t, "A", log, "exit=3", "--store", url, "--resource", "exit")
	waitRun(t, log, 1)
	startRunner(t, "B", log, "", "--store", url, "--resource", "exit")
	if code := a.wait(t, 10*time.Second); code != 3 {
		t.Errorf("runner exited %d, want the command's 3", code)
	}
	rs := runs(readLog(t, log))
	b := waitRun(t, log, 2)
	if b.name != "B" {
		t.Fatalf("second command is %s's", b.name)
	}
	if d := b.start.sub(rs[0].end); d > time.Second {
		t.Errorf("B's command started %v after A's exited: the leadership was not released", d)
	}
}

// TestRestart: with --restart, a command that exits is run again in the
// next term, and the runner goes on.
func TestRestart(t *testing.T) {
	url := redisStore(t)
	log := logPath(t)
	p := startRunner(t, "A", log, "exit=0", "--store", url, "--resource", "restart", "--restart")
	waitRun(t, log, 3)
	select {
	case <-p.done:
		t.Fatalf("runner exited %d", p.code)
	default:
	}
	rs := runs(readLog(t, log))
	for i := 1; i < len(rs); i++ {
		if rs[i].term <= rs[i-1].term {
			t.Errorf("run %d has term %d after %d", i, rs[i].term, rs[i-1].term)
		}
	}
	p.signal(syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
}

// TestLeaderWatch: leader --watch prints the leader, then the next one
// when the leadership moves, and exits 0 on SIGINT.
func TestLeaderWatch(t *testing.T) {
	url := redisStore(t)
	log := logPath(t)
	a := startRunner(t, "A", log, "", "--store", url, "--resource", "watch", "--id", "runner-a")
	waitRun(t, log, 1)
	startRunner(t, "B", log, "", "--store", url, "--resource", "watch", "--id", "runner-b")
	w := exec.Command(runnerBin, "leader", "--store", url, "--resource", "watch", "--watch", "--json", "--interval", "50ms")
	stdout, err := w.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Process.Kill() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	type line struct {
		Leader string `json:"leader"`
		Term   uint64 `json:"term"`
	}
	next := func() line {
		t.Helper()
		select {
		case s := <-lines:
			var l line
			if err := json.Unmarshal([]byte(s), &l); err != nil {
				t.Fatalf("line %q: %v", s, err)
			}
			return l
		case <-time.After(10 * time.Second):
			t.Fatal("no line from leader --watch")
			return line{}
		}
	}
	first := next()
	if first.Leader != "runner-a" || first.Term == 0 {
		t.Fatalf("first line %+v, want runner-a", first)
	}
	a.signal(syscall.SIGTERM)
	l := next()
	if l.Leader == "" { // the moment between the release and B's term
		l = next()
	}
	if l.Leader != "runner-b" || l.Term <= first.Term {
		t.Errorf("after A's stop: %+v, want runner-b with a higher term than %d", l, first.Term)
	}
	_ = w.Process.Signal(syscall.SIGINT)
	if err := w.Wait(); err != nil {
		t.Errorf("leader --watch after SIGINT: %v", err)
	}
}
