//go:build linux

package main

import (
	"slices"
	"syscall"
	"testing"
	"time"
)

const ms = monoTime(time.Millisecond)

// TestGuardExpires: without a newer deadline, the command gets SIGTERM
// grace before the deadline and SIGKILL at it, and nothing before.
func TestGuardExpires(t *testing.T) {
	g := newGuard(30*time.Millisecond, 100*ms)
	if at, ok := g.next(); !ok || at != 70*ms {
		t.Fatalf("next = %v %v, want 70ms", at, ok)
	}
	if got := g.step(69 * ms); len(got) != 0 {
		t.Fatalf("step(69ms) = %v, want nothing", got)
	}
	if got := g.step(70 * ms); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM}) {
		t.Fatalf("step(70ms) = %v, want SIGTERM", got)
	}
	if !g.expired {
		t.Error("not marked expired")
	}
	if at, _ := g.next(); at != 100*ms {
		t.Fatalf("SIGKILL due at %v, want 100ms", at)
	}
	if got := g.step(99 * ms); len(got) != 0 {
		t.Fatalf("step(99ms) = %v", got)
	}
	if got := g.step(100 * ms); !slices.Equal(got, []syscall.Signal{syscall.SIGKILL}) {
		t.Fatalf("step(100ms) = %v, want SIGKILL", got)
	}
	if _, ok := g.next(); ok {
		t.Error("a signal is still due after SIGKILL")
	}
}

// TestGuardAliveExtends: each newer deadline moves the stop; an older one
// does not move it back.
func TestGuardAliveExtends(t *testing.T) {
	g := newGuard(30*time.Millisecond, 100*ms)
	g.alive(200 * ms)
	g.alive(150 * ms)
	if got := g.step(160 * ms); len(got) != 0 {
		t.Fatalf("step(160ms) = %v, want nothing", got)
	}
	if at, _ := g.next(); at != 170*ms {
		t.Fatalf("next = %v, want 170ms", at)
	}
}

// TestGuardStop: a stop sends its signal at once, and SIGKILL after the
// grace, or at the deadline if that is sooner.
func TestGuardStop(t *testing.T) {
	g := newGuard(30*time.Millisecond, 100*ms)
	g.stop(syscall.SIGINT)
	if got := g.step(10 * ms); !slices.Equal(got, []syscall.Signal{syscall.SIGINT}) {
		t.Fatalf("step after stop = %v, want SIGINT", got)
	}
	if g.expired {
		t.Error("a stop marked expired")
	}
	g.stop(syscall.SIGTERM) // a second stop sends nothing more
	if got := g.step(39 * ms); len(got) != 0 {
		t.Fatalf("step(39ms) = %v", got)
	}
	if got := g.step(40 * ms); !slices.Equal(got, []syscall.Signal{syscall.SIGKILL}) {
		t.Fatalf("step(40ms) = %v, want SIGKILL", got)
	}

	g = newGuard(30*time.Millisecond, 100*ms)
	g.stop(syscall.SIGTERM)
	g.step(90 * ms)
	if at, _ := g.next(); at != 100*ms {
		t.Fatalf("SIGKILL due at %v, want the deadline 100ms", at)
	}
}

// TestGuardLate: a step long past the deadline sends both signals at once.
func TestGuardLate(t *testing.T) {
	g := newGuard(30*time.Millisecond, 100*ms)
	if got := g.step(500 * ms); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}) {
		t.Fatalf("step(500ms) = %v, want SIGTERM and SIGKILL", got)
	}
}

// TestBudget: the default grace, the largest that fits, and the deadline
// that leaves the slack free before the end of the margin past the term's
// step-down deadline.
func TestBudget(t *testing.T) {
	b, err := newBudget(15*time.Second, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if b.margin != 1500*time.Millisecond || b.grace != 375*time.Millisecond || b.maxGrace() != 750*time.Millisecond {
		t.Errorf("budget %+v", b)
	}
	// The term's deadline bounds the deadline, and the horizon (TTL/4)
	// bounds how far past the heartbeat the runner vouches for its term.
	for _, c := range []struct{ left, want time.Duration }{
		{-time.Second, 1350 * time.Millisecond}, // read past the deadline: no more than the margin
		{0, 1350 * time.Millisecond},
		{2 * time.Second, 3350 * time.Millisecond},
		{3750 * time.Millisecond, 5100 * time.Millisecond},
		{10 * time.Second, 5100 * time.Millisecond},
	} {
		if got := b.killBy(0, c.left); got.sub(0) != c.want {
			t.Errorf("killBy(0, %v) = %v, want %v", c.left, got.sub(0), c.want)
		}
	}
	if b.heartbeat*3 > b.margin-b.slack-b.maxGrace() {
		t.Errorf("heartbeat %v: fewer than 3 before SIGTERM at the longest grace", b.heartbeat)
	}
	if _, err := newBudget(15*time.Second, 750*time.Millisecond, true); err != nil {
		t.Errorf("grace 750ms refused: %v", err)
	}
	for _, g := range []time.Duration{751 * time.Millisecond, -time.Millisecond} {
		if _, err := newBudget(15*time.Second, g, true); err == nil {
			t.Errorf("grace %v accepted", g)
		}
	}
}
