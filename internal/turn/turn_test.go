package turn

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func TestGiveWakesTheNamedWaiterAlone(t *testing.T) {
	var l Line
	a := l.Join("a")
	b := l.Join("b")
	if !l.Give("b", time.Hour, func() {}) {
		t.Fatal("Give to a waiting candidate failed")
	}
	defer l.End()
	if !closed(b.Turn()) || closed(a.Turn()) {
		t.Fatal("Give must wake the named waiter, and it alone")
	}
	if !l.Holds(b) || l.Holds(a) || !l.On() {
		t.Fatal("b must hold the turn")
	}
	if l.Give("a", time.Hour, func() {}) {
		t.Fatal("a second turn was given while one is on")
	}
}

func TestGiveAnyoneWakesTheLongestWaiting(t *testing.T) {
	var l Line
	a := l.Join("a")
	b := l.Join("b")
	l.Leave(a)
	c := l.Join("c")
	if !l.Give("", time.Hour, func() {}) {
		t.Fatal("Give failed")
	}
	defer l.End()
	if !closed(b.Turn()) || closed(c.Turn()) {
		t.Fatal("the turn must go to the waiter waiting longest")
	}
}

func TestGiveNobody(t *testing.T) {
	var l Line
	_ = l.Join("a")
	if l.Give("x", time.Hour, func() {}) || l.On() {
		t.Fatal("a turn was given to a candidate that does not wait")
	}
	var empty Line
	if empty.Give("", time.Hour, func() {}) {
		t.Fatal("a turn was given in an empty line")
	}
}

func TestHeldBy(t *testing.T) {
	var l Line
	_ = l.Join("a")
	if l.HeldBy("a") {
		t.Fatal("HeldBy before a turn")
	}
	if !l.Give("a", time.Hour, func() {}) {
		t.Fatal("Give failed")
	}
	defer l.End()
	if !l.HeldBy("a") || l.HeldBy("b") {
		t.Fatal("HeldBy must name the holder alone")
	}
}

func TestTurnExpiresAfterItsBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu      sync.Mutex
			l       Line
			expired time.Duration
		)
		start := time.Now()
		mu.Lock()
		_ = l.Join("a")
		l.Give("a", 200*time.Millisecond, func() {
			mu.Lock()
			defer mu.Unlock()
			if l.End() {
				expired = time.Since(start)
			}
		})
		mu.Unlock()
		time.Sleep(time.Second)
		mu.Lock()
		defer mu.Unlock()
		if expired != 200*time.Millisecond {
			t.Fatalf("the turn expired after %v; want 200ms", expired)
		}
	})
}

func TestEndStopsTheBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var l Line
		_ = l.Join("a")
		fired := false
		l.Give("a", 200*time.Millisecond, func() { fired = true })
		if !l.End() || l.End() {
			t.Fatal("End must report the turn on once")
		}
		time.Sleep(time.Second)
		if fired {
			t.Fatal("the bound of an ended turn fired")
		}
	})
}
