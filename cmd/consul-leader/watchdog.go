//go:build linux

package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

// watchdogMode is the hidden first argument that runs the binary as the
// watchdog of one command: consul-leader __watchdog GRACE -- COMMAND ARGS...
const watchdogMode = "__watchdog"

// The watchdog's pipes to the runner, passed as extra files.
const (
	ctlFD    = 3
	reportFD = 4
)

// watchdogMain runs the watchdog. It starts the command in a process group
// of its own once the runner's first deadline has arrived, and stops it
// (stop signal, then SIGKILL after the grace, to the whole group) when the
// runner says so, when the runner goes away (end of file on the control
// pipe), or when the runner's last deadline draws near without a newer one:
// a stalled runner cannot keep it running. It reports the command's end and
// exits once the command is gone.
func watchdogMain(args []string, stderr io.Writer) int {
	if len(args) < 3 || args[1] != "--" {
		fmt.Fprintf(stderr, "consul-leader: %s is internal to consul-leader run\n", watchdogMode)
		return exitUsage
	}
	grace, err := time.ParseDuration(args[0])
	if err != nil || grace < 0 {
		fmt.Fprintf(stderr, "consul-leader %s: bad grace %q\n", watchdogMode, args[0])
		return exitUsage
	}
	syscall.CloseOnExec(ctlFD) // the command must not hold the runner's pipes
	syscall.CloseOnExec(reportFD)
	ctl := os.NewFile(ctlFD, "control")
	report := os.NewFile(reportFD, "report")
	if ctl == nil || report == nil {
		fmt.Fprintf(stderr, "consul-leader %s: no control pipes\n", watchdogMode)
		return exitUsage
	}
	w := &watchdog{grace: grace, command: args[2:], report: report, stderr: stderr}
	w.run(ctl)
	return 0
}

type watchdog struct {
	grace   time.Duration
	command []string
	report  io.Writer
	stderr  io.Writer
}

// run watches one command until it is gone.
func (w *watchdog) run(ctl io.Reader) {
	msgs := make(chan ctlMsg, 16)
	go readCtl(ctl, msgs, w.stderr)
	// The command starts once a deadline leaves room for the grace: the
	// first may be stale already when this process is up (a slow start),
	// and the runner sends fresher ones every heartbeat while its term
	// runs. A stop, or the runner's end, before that ends the watchdog
	// without a start.
	var killBy monoTime
	for !monoNow().add(w.grace).before(killBy) {
		m, ok := <-msgs
		if !ok || m.kind == msgStop {
			w.exit(0, reasonLate)
			return
		}
		if m.kind == msgAlive {
			killBy = max(killBy, m.killBy)
		}
	}
	g := newGuard(w.grace, killBy)
	// Signals sent to the watchdog itself stop the command gracefully.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	started := make(chan int, 1)
	done := make(chan *os.ProcessState, 1)
	go w.runChild(started, done)
	pid := <-started
	if pid < 0 {
		w.exit(127, reasonExec)
		return
	}
	fmt.Fprintf(w.report, "%s %d\n", msgStarted, pid)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := monoNow()
		for _, sig := range g.step(now) {
			_ = syscall.Kill(-pid, sig)
		}
		if at, due := g.next(); due {
			timer.Reset(max(at.sub(now), 0))
		}
		select {
		case m, ok := <-msgs:
			switch {
			case !ok:
				msgs = nil // the runner is gone
				g.stop(syscall.SIGTERM)
			case m.kind == msgAlive:
				g.alive(m.killBy)
			case m.kind == msgStop:
				g.stop(m.sig)
			case m.kind == msgSignal:
				_ = syscall.Kill(-pid, m.sig)
			}
		case <-sigs:
			g.stop(syscall.SIGTERM)
		case <-timer.C:
		case st := <-done:
			// What the command left in its group goes with it.
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			reason := reasonExited
			switch {
			case g.expired:
				reason = reasonExpired
			case g.stopped:
				reason = reasonStopped
			}
			w.exit(exitCode(st), reason)
			return
		}
	}
}

// runChild starts the command and waits for it, on a locked thread that
// ends with the goroutine: the command gets SIGKILL (Pdeathsig) when that
// thread ends, so also if the watchdog is killed. It sends the command's
// pid on started (-1 if it could not start), then its state on done.
func (w *watchdog) runChild(started chan<- int, done chan<- *os.ProcessState) {
	runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
	cmd := exec.Command(w.command[0], w.command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(w.stderr, "consul-leader: cannot start %s: %v\n", w.command[0], err)
		started <- -1
		return
	}
	started <- cmd.Process.Pid
	_ = cmd.Wait() // an exit status other than 0 is an error too; the state says it
	done <- cmd.ProcessState
}

// exit reports the command's end to the runner.
func (w *watchdog) exit(code int, reason string) {
	fmt.Fprintf(w.report, "%s %d %s\n", msgExit, code, reason)
}

// readCtl passes the runner's messages on, and closes msgs at the end of
// the pipe or on a message it cannot read.
func readCtl(r io.Reader, msgs chan<- ctlMsg, stderr io.Writer) {
	defer close(msgs)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		m, err := parseCtl(sc.Text())
		if err != nil {
			fmt.Fprintf(stderr, "consul-leader %s: %v\n", watchdogMode, err)
			return
		}
		msgs <- m
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		fmt.Fprintf(stderr, "consul-leader %s: control pipe: %v\n", watchdogMode, err)
	}
}

// exitCode is the shell's code of a process state: its exit code, or 128+N
// when signal N killed it.
func exitCode(st *os.ProcessState) int {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return st.ExitCode()
}
