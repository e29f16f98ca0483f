//go:build linux

package backends_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
)

// The stalled-leader test runs a leader in a child process (this test
// binary, run again with the variables below set), stops it with SIGSTOP
// past its TTL and continues it with SIGCONT. The leader's work loop checks
// ctx.Err() right before each write; no check made after the resume may
// find the term still running, even before the timer that enforces the
// step-down deadline has run since the resume. The stop outlasts the step-
// down deadline, and the store, in a process of its own, expires the session
// during the stop, so that no renewal after the resume can move the deadline
// again. (The memory store would stop with its leader, and could renew.)
const (
	stallURLEnv      = "CONSUL_LEADER_STALL_URL"
	stallResourceEnv = "CONSUL_LEADER_STALL_RESOURCE"
	stallTTLEnv      = "CONSUL_LEADER_STALL_TTL"
	stallPrefix      = "stall: "
)

// stallRounds is the number of stops per store.
const stallRounds = 20

func TestStalledLeaderWritesNoMore(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server stall test skipped in -short mode")
	}
	cases := []struct {
		name  string
		ttl   time.Duration
		stall time.Duration // past the TTL, and past the store's expiry
		url   func(t *testing.T) string
	}{
		{"redis", time.Second, 1500 * time.Millisecond, func(t *testing.T) string {
			return "redis://" + testserver.StartRedis(t, testserver.RedisOptions{}).Addr()
		}},
		{"etcd", 2 * time.Second, 2500 * time.Millisecond, func(t *testing.T) string {
			return "etcd://" + testserver.StartEtcd(t, testserver.EtcdOptions{}).Endpoint()
		}},
		{"consul", time.Second, 2 * time.Second, func(t *testing.T) string {
			return "consul://" + testserver.StartConsul(t, testserver.ConsulOptions{}).Addr + "?checkTTL=1s"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runStalls(t, tc.url(t), tc.ttl, tc.stall)
		})
	}
}

// TestStalledLeaderChild is the leader of TestStalledLeaderWritesNoMore, in
// its child process. It reports on stdout, until stdin closes: "lead TERM"
// at the start of a term; "write TERM T0 T1" for each write, whose check of
// ctx.Err() was made between T0 and T1 (Unix nanoseconds); "end TERM" when
// a check found the term ended.
func TestStalledLeaderChild(t *testing.T) {
	u := os.Getenv(stallURLEnv)
	if u == "" {
		t.Skip("runs only as the child process of TestStalledLeaderWritesNoMore")
	}
	ttl, err := time.ParseDuration(os.Getenv(stallTTLEnv))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	report := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(stallPrefix+format+"\n", args...)
	}
	el, err := backends.Open(context.Background(), u, election.Options{Resource: os.Getenv(stallResourceEnv), ID: "stalled", TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	err = el.Start(context.Background(), func(ctx context.Context, l election.Leadership) error {
		if !l.IsLeader {
			return nil
		}
		report("lead %d", l.Term)
		for {
			t0 := time.Now()
			if ctx.Err() != nil {
				break
			}
			t1 := time.Now()
			report("write %d %d %d", l.Term, t0.UnixNano(), t1.UnixNano())
			time.Sleep(time.Millisecond)
		}
		report("end %d", l.Term)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := el.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// stallEvent is a line of the child's report.
type stallEvent struct {
	kind   string // lead, write, end
	term   uint64
	t0, t1 int64
}

// runStalls runs the child leader on u and stops it for stall,
// stallRounds times.
func runStalls(t *testing.T, u string, ttl, stall time.Duration) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestStalledLeaderChild$")
	cmd.Env = append(os.Environ(), stallURLEnv+"="+u, stallTTLEnv+"="+ttl.String(),
		stallResourceEnv+"="+"stall-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	events := make(chan stallEvent, 1<<16)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer close(events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), stallPrefix)
			if !ok {
				continue
			}
			var ev stallEvent
			f := strings.Fields(line)
			ev.kind = f[0]
			ev.term, _ = strconv.ParseUint(f[1], 10, 64)
			if ev.kind == "write" {
				ev.t0, _ = strconv.ParseInt(f[2], 10, 64)
				ev.t1, _ = strconv.ParseInt(f[3], 10, 64)
			}
			events <- ev
		}
	}()
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		_ = stdin.Close()
		exited := make(chan error, 1)
		go func() {
			for range events { // drain, so that the child can write
			}
			exited <- cmd.Wait()
		}()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("child leader: %v", err)
			}
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Error("child leader did not exit within 20 s of its stdin closing")
		}
	})

	next := func(within time.Duration) stallEvent {
		t.Helper()
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("child leader exited")
			}
			return ev
		case <-time.After(within):
			t.Fatalf("child leader reported nothing within %v", within)
			return stallEvent{}
		}
	}
	bound := 3*ttl + 10*time.Second
	var lastTerm uint64
	var resumeToEnd []time.Duration
	failed := 0
	for round, attempts := 0, 0; round < stallRounds; attempts++ {
		if attempts >= 2*stallRounds {
			t.Fatalf("only %d of %d rounds in %d attempts: the child's terms keep ending on their own", round, stallRounds, attempts)
		}
		ev := next(bound)
		for ev.kind != "lead" || ev.term <= lastTerm {
			ev = next(bound)
		}
		term := ev.term
		lastTerm = term
		// Let the term write for a while.
		writes, ended := 0, false
		for writes < 50 && !ended {
			ev = next(bound)
			writes += b2i(ev.kind == "write" && ev.term == term)
			ended = ev.kind == "end" && ev.term == term
		}
		if ended {
			t.Logf("term %d ended before the stop; campaigning again", term)
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(stall)
		resumed := time.Now()
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		late := 0
		for {
			ev = next(bound)
			if ev.term != term {
				continue
			}
			if ev.kind == "write" && ev.t0 > resumed.UnixNano() {
				late++
			}
			if ev.kind == "end" {
				break
			}
		}
		resumeToEnd = append(resumeToEnd, time.Since(resumed))
		if late > 0 {
			failed++
			t.Errorf("round %d, term %d: %d writes after a check of ctx.Err() made after the resume, %v past the TTL %v", round, term, late, stall, ttl)
		}
		round++
	}
	slowest := time.Duration(0)
	for _, d := range resumeToEnd {
		slowest = max(slowest, d)
	}
	t.Logf("%d stops of %v with TTL %v: %d with a write checked after the resume; the end was reported at most %v after a resume",
		stallRounds, stall, ttl, failed, slowest.Round(time.Millisecond))
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
