package benchscale

import (
	"net"
	"runtime"
	"testing"
	"time"
)

func TestSocketsCountsConnectionsToThePort(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() { // accepts one connection only
		if c, err := ln.Accept(); err == nil {
			accepted <- c
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	if n := Sockets(port); n != 0 {
		t.Fatalf("Sockets = %d before any connection, want 0", n)
	}
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	defer (<-accepted).Close()
	// The accepted end is on the port, not to it: it does not count, and
	// the second connection, established but never accepted, does.
	if n := Sockets(port); n != 2 {
		t.Fatalf("Sockets = %d with two connections, want 2", n)
	}
}

func TestTakeReadsRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	u := Take()
	if u.RSS <= 0 || u.HeapInuse == 0 || u.Goroutines < 1 {
		t.Fatalf("Take() = %+v", u)
	}
}

func TestQuantile(t *testing.T) {
	s := []time.Duration{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	if q := Quantile(s, 0.5); q != 6 {
		t.Errorf("p50 = %v, want 6", q)
	}
	if q := Quantile(s, 0.99); q != 10 {
		t.Errorf("p99 = %v, want 10", q)
	}
	if q := Quantile(nil, 0.5); q != 0 {
		t.Errorf("p50 of nothing = %v", q)
	}
}

func TestIntAndDuration(t *testing.T) {
	t.Setenv("BENCHSCALE_TEST", "")
	if Int("BENCHSCALE_TEST", 7) != 7 || Duration("BENCHSCALE_TEST", time.Second) != time.Second {
		t.Fatal("defaults not used")
	}
	t.Setenv("BENCHSCALE_TEST", "12")
	if Int("BENCHSCALE_TEST", 7) != 12 {
		t.Fatal("value not used")
	}
	t.Setenv("BENCHSCALE_TEST", "1m")
	if Duration("BENCHSCALE_TEST", time.Second) != time.Minute {
		t.Fatal("duration not used")
	}
	t.Setenv("BENCHSCALE_TEST", "ten")
	defer func() {
		if recover() == nil {
			t.Fatal("Int accepted ten")
		}
	}()
	Int("BENCHSCALE_TEST", 7)
}
