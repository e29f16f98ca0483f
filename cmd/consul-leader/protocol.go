//go:build linux

package main

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
)

// The runner and its watchdog talk over two pipes, one line per message.
//
// Runner to watchdog (the watchdog's fd 3):
//
//	alive KILLBY   the term was running just now: the command must be dead by KILLBY (CLOCK_MONOTONIC, ns)
//	stop SIGNO     stop the command now with SIGNO, SIGKILL after the grace
//	signal SIGNO   forward SIGNO to the command's process group
//
// End of file on it means that the runner is gone: stop as for "stop 15".
//
// Watchdog to runner (the watchdog's fd 4):
//
//	started PID           the command runs, as process (and process group) PID
//	exit CODE REASON      the command and its process group are gone; REASON is one of the reason constants
const (
	msgAlive   = "alive"
	msgStop    = "stop"
	msgSignal  = "signal"
	msgStarted = "started"
	msgExit    = "exit"
)

// Why the command ended, as the watchdog reports it.
const (
	reasonExited  = "exited"  // by itself
	reasonStopped = "stopped" // on the runner's stop, or because the runner is gone
	reasonExpired = "expired" // the runner's deadline drew near without a newer one: the runner stalled
	reasonLate    = "late"    // not started: stopped before a deadline left room for the grace
	reasonExec    = "exec"    // not started: it could not be run
	reasonLost    = "lost"    // the watchdog ended without a report (runner side only)
)

// ctlMsg is a message of the runner to the watchdog.
type ctlMsg struct {
	kind   string
	killBy monoTime       // alive
	sig    syscall.Signal // stop, signal
}

func (m ctlMsg) String() string {
	switch m.kind {
	case msgAlive:
		return fmt.Sprintf("%s %d\n", m.kind, int64(m.killBy))
	default:
		return fmt.Sprintf("%s %d\n", m.kind, int(m.sig))
	}
}

// parseCtl parses a line of the runner.
func parseCtl(line string) (ctlMsg, error) {
	kind, arg, ok := strings.Cut(strings.TrimSpace(line), " ")
	if !ok {
		return ctlMsg{}, fmt.Errorf("bad control message %q", line)
	}
	n, err := strconv.ParseInt(arg, 10, 64)
	if err != nil {
		return ctlMsg{}, fmt.Errorf("bad control message %q: %w", line, err)
	}
	switch kind {
	case msgAlive:
		return ctlMsg{kind: kind, killBy: monoTime(n)}, nil
	case msgStop, msgSignal:
		if n <= 0 || n > 64 {
			return ctlMsg{}, fmt.Errorf("bad signal in control message %q", line)
		}
		return ctlMsg{kind: kind, sig: syscall.Signal(n)}, nil
	}
	return ctlMsg{}, fmt.Errorf("unknown control message %q", line)
}

// childExit is how a command ended.
type childExit struct {
	code   int    // its exit code, 128+N when killed by signal N
	reason string // one of the reason constants
}

// parseReport parses a line of the watchdog: a started or an exit report.
func parseReport(line string) (kind string, pid int, exit childExit, err error) {
	f := strings.Fields(line)
	switch {
	case len(f) == 2 && f[0] == msgStarted:
		pid, err = strconv.Atoi(f[1])
		return f[0], pid, exit, err
	case len(f) == 3 && f[0] == msgExit:
		exit.code, err = strconv.Atoi(f[1])
		exit.reason = f[2]
		return f[0], 0, exit, err
	}
	return "", 0, exit, fmt.Errorf("bad watchdog report %q", line)
}
