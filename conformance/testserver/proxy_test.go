package testserver

import (
	"bufio"
	"net"
	"testing"
	"time"
)

// echoServer answers every line with the same line, and sends the time each
// line arrived on got.
func echoServer(t *testing.T, got chan<- time.Time) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					got <- time.Now()
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestProxyDelayReplies: requests reach the target at once, replies arrive
// the delay later, and replies sent one after another do not add their
// delays up. A reply that passed the proxy before a Cut still arrives.
func TestProxyDelayReplies(t *testing.T) {
	arrived := make(chan time.Time, 16)
	p := NewProxy(t, echoServer(t, arrived))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	roundTrip := func() (sent, atServer, back time.Time) {
		t.Helper()
		sent = time.Now()
		if _, err := c.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		select {
		case atServer = <-arrived:
		case <-time.After(5 * time.Second):
			t.Fatal("request did not reach the server")
		}
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		return sent, atServer, time.Now()
	}
	roundTrip() // connected

	const d = 300 * time.Millisecond
	p.DelayReplies(d)
	sent, atServer, back := roundTrip()
	if took := atServer.Sub(sent); took >= d {
		t.Errorf("request took %v to reach the server; want it at once", took)
	}
	if took := back.Sub(atServer); took < d || took > d+2*time.Second {
		t.Errorf("reply took %v; want %v", took, d)
	}

	// Three requests at once: their replies arrive together, d late.
	start := time.Now()
	for range 3 {
		if _, err := c.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		<-arrived
	}
	for range 3 {
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < d || took > 2*d {
		t.Errorf("three replies took %v; want %v, not added up", took, d)
	}

	// A reply on its way when the proxy is cut still arrives.
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	<-arrived
	time.Sleep(d / 3) // the reply is in the proxy
	p.Cut()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatalf("reply on its way at the cut: %v", err)
	}
	// A request sent while cut is held back until Heal.
	if _, err := c.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
		t.Fatal("request passed the cut proxy")
	case <-time.After(d):
	}
	p.Heal()
	p.DelayReplies(0)
	select {
	case <-arrived:
	case <-time.After(5 * time.Second):
		t.Fatal("request held back after Heal")
	}
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
}
