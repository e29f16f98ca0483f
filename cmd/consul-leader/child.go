//go:build linux

package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// child is the runner's handle on one run of the command: the watchdog
// process that holds it, and the pipes to it.
type child struct {
	cmd   *exec.Cmd
	ctl   *os.File // to the watchdog
	write time.Duration

	mu  sync.Mutex // serializes writes to ctl
	pid int        // the command's, once started; under mu

	done chan childExit // receives the command's end, once
}

// startChild starts the watchdog of command, which starts the command with
// env once it has the first deadline, killBy.
func startChild(exe string, b budget, command, env []string, killBy monoTime) (*child, error) {
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("control pipe: %w", err)
	}
	repR, repW, err := os.Pipe()
	if err != nil {
		_ = ctlR.Close()
		_ = ctlW.Close()
		return nil, fmt.Errorf("report pipe: %w", err)
	}
	args := append([]string{watchdogMode, b.grace.String(), "--"}, command...)
	cmd := exec.Command(exe, args...)
	cmd.Env = env
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{ctlR, repW} // fds 3 and 4
	// A group of its own: a terminal's Ctrl-C or Ctrl-Z reaches the runner,
	// which decides, and not the watchdog.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c := &child{cmd: cmd, ctl: ctlW, write: b.heartbeat, done: make(chan childExit, 1)}
	c.send(ctlMsg{kind: msgAlive, killBy: killBy})
	err = cmd.Start()
	_ = ctlR.Close()
	_ = repW.Close()
	if err != nil {
		_ = ctlW.Close()
		_ = repR.Close()
		return nil, fmt.Errorf("start the watchdog: %w", err)
	}
	go c.wait(repR)
	return c, nil
}

// wait reads the watchdog's reports until it exits, and then reports the
// command's end on done.
func (c *child) wait(rep *os.File) {
	exit := childExit{code: 1, reason: reasonLost}
	sc := bufio.NewScanner(rep)
	for sc.Scan() {
		kind, pid, e, err := parseReport(sc.Text())
		switch {
		case err != nil:
		case kind == msgStarted:
			c.mu.Lock()
			c.pid = pid
			c.mu.Unlock()
		case kind == msgExit:
			exit = e
		}
	}
	_ = rep.Close()
	_ = c.cmd.Wait()
	c.mu.Lock()
	_ = c.ctl.Close()
	c.mu.Unlock()
	c.done <- exit
}

// alive extends the command's deadline to killBy.
func (c *child) alive(killBy monoTime) { c.send(ctlMsg{kind: msgAlive, killBy: killBy}) }

// stop has the watchdog stop the command with sig, then SIGKILL after the
// grace.
func (c *child) stop(sig syscall.Signal) { c.send(ctlMsg{kind: msgStop, sig: sig}) }

// signal forwards sig to the command's process group.
func (c *child) signal(sig syscall.Signal) { c.send(ctlMsg{kind: msgSignal, sig: sig}) }

// send writes m, waiting at most one heartbeat: a watchdog that does not
// read (stopped itself) is not waited for, and a lost deadline is followed
// by a later one.
func (c *child) send(m ctlMsg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	_ = c.ctl.SetWriteDeadline(time.Now().Add(c.write))
	// A line is shorter than PIPE_BUF: it is written whole or not at all.
	// An error means the watchdog is gone or stuck; its end is reported on
	// done.
	_, _ = c.ctl.WriteString(m.String())
}
