//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testChild starts a watchdog (the built binary) of this test binary in
// mode, logging to a new file, with the first deadline killBy.
func testChild(t *testing.T, mode string, grace time.Duration, killBy monoTime) (*child, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	log := logPath(t)
	env := append(os.Environ(), childLogEnv+"="+log, childNameEnv+"=W", childModeEnv+"="+mode)
	c, err := startChild(runnerBin, budget{grace: grace, heartbeat: 10 * time.Millisecond}, []string{self}, env, killBy)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.stop(syscall.SIGKILL)
		select {
		case <-c.done:
		case <-time.After(5 * time.Second): // a watchdog that does not listen
			_ = c.cmd.Process.Kill() // its command dies with it (Pdeathsig)
			<-c.done
		}
	})
	return c, log
}

func waitExit(t *testing.T, c *child) childExit {
	t.Helper()
	select {
	case e := <-c.done:
		c.done <- e // for the cleanup
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("the watchdog did not end")
		return childExit{}
	}
}

// TestWatchdogDeadline: with no newer deadline (a stalled runner), the
// watchdog sends SIGTERM grace before the deadline and SIGKILL at it: a
// command that ignores SIGTERM runs no later than the deadline and the
// slack the budget keeps after it.
func TestWatchdogDeadline(t *testing.T) {
	const grace = 100 * time.Millisecond
	killBy := monoNow().add(time.Second)
	c, log := testChild(t, "ignore", grace, killBy)
	e := waitExit(t, c)
	if e.reason != reasonExpired || e.code != 128+int(syscall.SIGKILL) {
		t.Errorf("exit %+v, want expired by SIGKILL", e)
	}
	r := runs(readLog(t, log))[0]
	if len(r.signals) == 0 {
		t.Fatal("the command got no SIGTERM")
	}
	var termAt monoTime
	for _, ev := range readLog(t, log) {
		if ev.kind == "sig" {
			termAt = ev.at
			break
		}
	}
	if termAt.before(killBy.add(-grace)) {
		t.Errorf("SIGTERM %v before the deadline, earlier than the grace %v", killBy.sub(termAt), grace)
	}
	// SIGKILL is sent at killBy, and takes effect a moment later: the
	// budget keeps slack after killBy for that, and for the watchdog's timer
	// firing late. The smallest TTL that allows this grace (2 s) keeps the
	// smallest slack; past it, another runner could lead.
	b, err := newBudget(20*grace, grace, true)
	if err != nil {
		t.Fatal(err)
	}
	if r.end > killBy.add(b.slack) {
		t.Errorf("the command ran %v past its deadline, more than the slack %v kept for the kill", r.end.sub(killBy), b.slack)
	}
}

// TestWatchdogAlive: newer deadlines keep the command running; a stop
// sends SIGTERM at once.
func TestWatchdogAlive(t *testing.T) {
	c, log := testChild(t, "", 50*time.Millisecond, monoNow().add(300*time.Millisecond))
	until := time.Now().Add(time.Second)
	for time.Now().Before(until) {
		c.alive(monoNow().add(300 * time.Millisecond))
		time.Sleep(10 * time.Millisecond)
	}
	r := runs(readLog(t, log))
	if len(r) != 1 || r[0].stopped || len(r[0].signals) > 0 {
		t.Fatalf("command stopped while its deadline was extended: %+v", r)
	}
	at := monoNow()
	c.stop(syscall.SIGTERM)
	if e := waitExit(t, c); e.reason != reasonStopped || e.code != 0 {
		t.Errorf("exit %+v, want stopped with the command's 0", e)
	}
	if r := runs(readLog(t, log))[0]; !r.stopped || r.end.sub(at) > 500*time.Millisecond {
		t.Errorf("command stopped %v after the stop (recorded %v)", r.end.sub(at), r.stopped)
	}
}

// TestWatchdogRunnerGone: the end of the control pipe (the runner killed)
// stops the command at once, with SIGTERM.
func TestWatchdogRunnerGone(t *testing.T) {
	c, log := testChild(t, "", 50*time.Millisecond, monoNow().add(time.Hour))
	waitRun(t, log, 1)
	at := monoNow()
	c.mu.Lock()
	_ = c.ctl.Close()
	c.mu.Unlock()
	if e := waitExit(t, c); e.reason != reasonStopped {
		t.Errorf("exit %+v, want stopped", e)
	}
	if r := runs(readLog(t, log))[0]; !r.stopped || r.end.sub(at) > 500*time.Millisecond {
		t.Errorf("command stopped %v after the runner went (recorded %v)", r.end.sub(at), r.stopped)
	}
}

// TestWatchdogStaleStart: a first deadline that leaves no room for the
// grace does not start the command; a fresher one does.
func TestWatchdogStaleStart(t *testing.T) {
	c, log := testChild(t, "", 50*time.Millisecond, monoNow())
	time.Sleep(300 * time.Millisecond)
	if rs := runs(readLog(t, log)); len(rs) != 0 {
		t.Fatal("the command started on a stale deadline")
	}
	c.alive(monoNow().add(time.Hour))
	waitRun(t, log, 1)
	c.stop(syscall.SIGTERM)
	if e := waitExit(t, c); e.reason != reasonStopped {
		t.Errorf("exit %+v", e)
	}
}

// TestWatchdogGroup: what the command leaves in its process group is
// killed when it exits, and signals reach the whole group.
func TestWatchdogGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	c, err := startChild(runnerBin, budget{grace: 50 * time.Millisecond, heartbeat: 10 * time.Millisecond},
		[]string{"sh", "-c", "sleep 60 & echo $! > " + pidFile + "; sleep 0.2; exit 4"}, os.Environ(), monoNow().add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	e := <-c.done
	if e.reason != reasonExited || e.code != 4 {
		t.Errorf("exit %+v, want exited with 4", e)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitFor(t, 5*time.Second, "leftover killed", func() bool {
		return syscall.Kill(pid, 0) == syscall.ESRCH || isZombie(pid)
	})
}

// isZombie reports whether pid has exited and waits for its reaper.
func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return len(f) > 0 && f[0] == "Z"
}

// TestWatchdogKilled: a watchdog killed with SIGKILL takes its command
// with it (Pdeathsig of the thread that started it).
func TestWatchdogKilled(t *testing.T) {
	c, log := testChild(t, "", 50*time.Millisecond, monoNow().add(time.Hour))
	r := waitRun(t, log, 1)
	_ = c.cmd.Process.Kill()
	waitFor(t, 5*time.Second, "command killed with its watchdog", func() bool {
		return syscall.Kill(r.pid, 0) == syscall.ESRCH || isZombie(r.pid)
	})
}
