//go:build linux

package main

import (
	"syscall"
	"time"
)

// guard decides when the watchdog signals the child: the timing logic of
// the watchdog, apart from its processes and pipes. Its times are readings
// of CLOCK_MONOTONIC.
type guard struct {
	grace  time.Duration
	killBy monoTime // the child must be dead by then: the latest deadline the runner sent

	stopSig syscall.Signal // the signal that stops the child; SIGTERM unless the runner forwards another
	stopped bool           // the runner asked for a stop, or is gone
	termed  bool           // stopSig was sent
	killAt  monoTime       // when SIGKILL is due, once termed
	killed  bool           // SIGKILL was sent
	expired bool           // stopSig was sent because killBy drew near, not on the runner's word
}

// newGuard returns the guard of a child that must be dead by killBy unless
// the runner extends it.
func newGuard(grace time.Duration, killBy monoTime) *guard {
	return &guard{grace: grace, killBy: killBy, stopSig: syscall.SIGTERM}
}

// alive extends the deadline to killBy; a deadline never moves back.
func (g *guard) alive(killBy monoTime) {
	g.killBy = max(g.killBy, killBy)
}

// stop asks for the child's stop now, with sig (SIGTERM when the runner's
// term ended or the runner is gone).
func (g *guard) stop(sig syscall.Signal) {
	if !g.stopped && !g.termed {
		g.stopSig = sig
	}
	g.stopped = true
}

// step returns the signals due at now, in order, and records them as sent.
func (g *guard) step(now monoTime) []syscall.Signal {
	var out []syscall.Signal
	if !g.termed && (g.stopped || !now.add(g.grace).before(g.killBy)) {
		g.termed = true
		g.expired = !g.stopped
		g.killAt = min(now.add(g.grace), g.killBy)
		out = append(out, g.stopSig)
	}
	if g.termed && !g.killed && !now.before(g.killAt) {
		g.killed = true
		out = append(out, syscall.SIGKILL)
	}
	return out
}

// next returns when the next signal is due, and false when none is.
func (g *guard) next() (monoTime, bool) {
	switch {
	case !g.termed && g.stopped:
		return 0, true
	case !g.termed:
		return g.killBy.add(-g.grace), true
	case !g.killed:
		return g.killAt, true
	}
	return 0, false
}
