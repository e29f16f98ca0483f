//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// lineLog records the lines written to it, with the time of each.
type lineLog struct {
	mu    sync.Mutex
	lines []string
	at    []time.Time
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range strings.SplitAfter(string(p), "\n") {
		if s != "" {
			l.lines = append(l.lines, strings.TrimSuffix(s, "\n"))
			l.at = append(l.at, time.Now())
		}
	}
	return len(p), nil
}

func (l *lineLog) snapshot() ([]string, []time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...), append([]time.Time(nil), l.at...)
}

// jsonLine is a line of leader --watch --json.
type jsonLine struct {
	Leader string `json:"leader"`
	Term   uint64 `json:"term"`
}

// TestWatchLeaderLines follows a memory store in fake time: each change
// (an election, a release, a new term, an expiry, another leader) is
// printed once and at once, not a poll later; a minute of renewals and
// blocking reads that time out prints nothing; a store that does not
// answer is reported on stderr once, its recovery too, and the change
// missed meanwhile is printed after it; cancelling the context ends the
// watch with 0.
func TestWatchLeaderLines(t *testing.T) {
	defer goleak.VerifyNone(t)
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		quiet := slog.New(slog.DiscardHandler)
		store := memory.NewStore()
		const ttl = 10 * time.Second
		opts := func(id string) election.Options {
			return election.Options{Resource: "r", ID: id, TTL: ttl, WaitTime: time.Second, Logger: quiet}
		}
		obs, err := election.NewOwning(store.Connect("obs"), opts("obs"))
		if err != nil {
			t.Fatal(err)
		}
		var out, errOut lineLog
		wctx, stop := context.WithCancel(ctx)
		done := make(chan int, 1)
		go func() { done <- watchLeader(wctx, obs, printer{w: &out, json: true}, &errOut) }()
		var electors []*election.Elector
		t.Cleanup(func() { // also after a failure, so that no goroutine is left in the bubble
			stop()
			<-done
			for _, id := range []string{"obs", "a", "b"} {
				store.Heal(id)
			}
			for _, el := range append(electors, obs) {
				_ = el.Close(ctx)
			}
		})

		var want []jsonLine
		term := func() uint64 { _, n := store.Leader("r"); return n }
		// check checks that the lines printed are want, the last printed at
		// once (at the time of the call) if now.
		check := func(what string, now bool) {
			t.Helper()
			synctest.Wait()
			lines, at := out.snapshot()
			var got []jsonLine
			for _, s := range lines {
				var l jsonLine
				if err := json.Unmarshal([]byte(s), &l); err != nil {
					t.Fatalf("line %q: %v", s, err)
				}
				got = append(got, l)
			}
			if !slices.Equal(got, want) {
				t.Fatalf("%s: lines %+v, want %+v", what, got, want)
			}
			if d := time.Since(at[len(at)-1]); now && d != 0 {
				t.Errorf("%s: printed %v before the check, want at the change", what, d)
			}
		}
		// expect checks that leader, with the store's current term, was
		// printed last, at once.
		expect := func(what, leader string) {
			t.Helper()
			synctest.Wait()
			want = append(want, jsonLine{leader, term()})
			check(what, true)
		}
		candidate := func(id string) *election.Elector {
			el, err := election.NewOwning(store.Connect(id), opts(id))
			if err != nil {
				t.Fatal(err)
			}
			if err := el.Start(ctx, func(context.Context, election.Leadership) error { return nil }); err != nil {
				t.Fatal(err)
			}
			electors = append(electors, el)
			return el
		}
		expect("start", "")
		a := candidate("a")
		expect("a elected", "a")
		time.Sleep(time.Minute) // renewals, and blocking reads that time out
		check("a minute later", false)
		if err := a.Release(ctx); err != nil {
			t.Fatal(err)
		}
		expect("a released", "")
		time.Sleep(ttl) // a campaigns again after its RetryInterval
		synctest.Wait()
		want = append(want, jsonLine{"a", term()})
		check("a's next term", false)
		store.Cut("a")
		if !store.Expire("r") {
			t.Fatal("no session to expire")
		}
		expect("a expired", "")
		b := candidate("b")
		expect("b elected", "b")
		lines, _ := out.snapshot()
		if len(lines) != len(want) {
			t.Fatalf("lines %q, want %+v", lines, want)
		}

		// The store stops answering the watcher: one error line, once its
		// read's deadline passed; b's release meanwhile is printed once the
		// store answers again.
		store.Cut("obs")
		time.Sleep(time.Minute)
		synctest.Wait()
		if errs, _ := errOut.snapshot(); len(errs) != 1 || !strings.Contains(errs[0], "retrying") {
			t.Fatalf("stderr after a minute cut off: %q, want one error line", errs)
		}
		if err := b.Close(ctx); err != nil {
			t.Fatal(err)
		}
		store.Heal("obs")
		time.Sleep(watchRetryMax * 6 / 5)
		synctest.Wait()
		if errs, _ := errOut.snapshot(); len(errs) != 2 || !strings.Contains(errs[1], "answers again") {
			t.Fatalf("stderr after the store healed: %q, want the error line and the recovery", errs)
		}
		// Reads that hang fail after WaitTime + RequestTimeout (3 s), and are
		// retried after 100 ms, doubled up to 5 s, ±20 %: 11 to 13 failed
		// reads in the minute, and some 28 without the backoff, 9 without
		// its bound.
		errs, _ := errOut.snapshot()
		var failed int
		if _, err := fmt.Sscanf(errs[1][strings.Index(errs[1], "after"):], "after %d failed reads", &failed); err != nil || failed < 10 || failed > 14 {
			t.Errorf("recovery line %q (%v): want 10 to 14 failed reads in the minute cut off", errs[1], err)
		}
		if lines, _ := out.snapshot(); len(lines) != len(want)+1 || !strings.Contains(lines[len(lines)-1], `"leader":""`) {
			t.Fatalf("lines after the store healed: %q, want b's release last", lines)
		}

		stop()
		if code := <-done; code != 0 {
			t.Errorf("watchLeader ended with %d, want 0", code)
		}
		done <- 0 // for the cleanup
	})
}

// silentStore is a store whose connection dies at dead, and whose blocking
// reads then go on ending their waits on what was last heard, without a
// round trip (as etcd's and Consul's may): only a read at once fails.
type silentStore struct {
	dead time.Time
	wait time.Duration
}

func (s silentStore) WatchLeader(ctx context.Context, after uint64, _ time.Duration) (election.Leadership, uint64, error) {
	if after == 0 {
		if time.Now().Before(s.dead) {
			return election.Leadership{LeaderID: "a", Term: 1}, 1, nil
		}
		return election.Leadership{}, 0, errors.New("read: connection dead")
	}
	select {
	case <-time.After(s.wait):
		return election.Leadership{LeaderID: "a", Term: 1}, after, nil
	case <-ctx.Done():
		return election.Leadership{}, 0, ctx.Err()
	}
}

// TestWatchLeaderNoticesSilentStore: a blocking read that ends its wait with
// nothing new is followed by a read at once, so that a store whose blocking
// reads go on answering from what they last heard is reported all the same.
func TestWatchLeaderNoticesSilentStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		var out, errOut lineLog
		done := make(chan int, 1)
		go func() {
			done <- watchLeader(ctx, silentStore{dead: time.Now().Add(time.Second), wait: 5 * time.Second}, printer{w: &out}, &errOut)
		}()
		time.Sleep(time.Minute)
		synctest.Wait()
		if errs, _ := errOut.snapshot(); len(errs) != 1 || !strings.Contains(errs[0], "connection dead") {
			t.Errorf("stderr after a minute: %q, want the failed read once", errs)
		}
		if lines, _ := out.snapshot(); len(lines) != 1 {
			t.Errorf("stdout: %q, want a's term once", lines)
		}
		stop()
		if code := <-done; code != 0 {
			t.Errorf("watchLeader ended with %d", code)
		}
	})
}
