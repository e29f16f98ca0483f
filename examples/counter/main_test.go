package main

import (
	"context"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/election"
)

// TestScript plays the demo on the memory store and checks what it shows:
// three terms, growing, one per leader, the release and the death; and that
// once every elector is closed no goroutine is left.
func TestScript(t *testing.T) {
	defer goleak.VerifyNone(t)
	out := captureStdout(t, func() {
		d := &demo{
			opener: &backends.Opener{},
			url:    "memory://test",
			sink:   &fencedCounter{},
			step:   2500 * time.Millisecond,
			base:   election.Options{Resource: "counter", TTL: time.Second},
		}
		if err := d.script(context.Background(), 3); err != nil {
			t.Error(err)
		}
	})
	became := regexp.MustCompile(`(node-\d) +\*\* became leader, term (\d+)`).FindAllStringSubmatch(out, -1)
	if len(became) != 3 {
		t.Fatalf("%d terms, want 3:\n%s", len(became), out)
	}
	var last uint64
	for i, m := range became {
		term, _ := strconv.ParseUint(m[2], 10, 64)
		if term <= last {
			t.Errorf("term %d after %d", term, last)
		}
		last = term
		if i > 0 && m[1] == became[i-1][1] {
			t.Errorf("%s led twice in a row: leadership did not move", m[1])
		}
	}
	for _, want := range []string{"leadership released", "lease not renewed in time", "follows node-", "shared total"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "write refused") {
		t.Errorf("a leader's write was refused by the fenced counter:\n%s", out)
	}
}

// TestSingle runs one candidate until its context ends, as -id does until
// Ctrl-C: it leads, and stops leading when the context ends, leaving no
// goroutine behind.
func TestSingle(t *testing.T) {
	defer goleak.VerifyNone(t)
	out := captureStdout(t, func() {
		sink := &fencedCounter{}
		d := &demo{
			opener: &backends.Opener{},
			url:    "memory://single",
			sink:   sink,
			base:   election.Options{Resource: "counter", TTL: time.Second},
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() { // Ctrl-C once the leader has counted
			defer cancel()
			for deadline := time.Now().Add(30 * time.Second); ctx.Err() == nil && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
				sink.mu.Lock()
				total := sink.total
				sink.mu.Unlock()
				if total > 0 {
					return
				}
			}
		}()
		if err := d.single(ctx, "node-1"); err != nil {
			t.Error(err)
		}
	})
	for _, want := range []string{"node-1  ** became leader", "node-1  stops leading", "shared total 1"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestFencedCounterRefusesOldTerms(t *testing.T) {
	var f fencedCounter
	if _, err := f.Add(5); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Add(3); err == nil {
		t.Fatal("a write with an older term was accepted")
	}
	if n, err := f.Add(5); err != nil || n != 2 {
		t.Fatalf("Add(5) = %d, %v", n, err)
	}
}

func captureStdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	f()
	os.Stdout = old
	w.Close()
	return <-done
}
