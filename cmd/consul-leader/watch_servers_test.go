//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance/testserver"
)

// watchBound is how soon after a change leader --watch must print it: a
// blocking read's round trip, and the scheduling of a busy machine. Polling
// at the old default interval of 1 s would miss it, and the tests pass
// --interval 10s.
const watchBound = 300 * time.Millisecond

// timedLine is a line a process wrote, and when it was read.
type timedLine struct {
	text string
	at   monoTime
}

// readLines sends each line of r, timed, until r ends; then it closes c.
func readLines(r io.Reader, c chan<- timedLine) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		c <- timedLine{sc.Text(), monoNow()}
	}
	close(c)
}

// TestLeaderWatchStores runs leader --watch --json on Consul, etcd and Redis
// (at once, as TestFailover does) through a proxy, while runners of the
// resource take turns: A leads, releases, B leads, B is killed and its
// session expires, C leads, and the watcher's store connection is cut
// while C releases, then healed. The watcher must print exactly one JSON
// line per change, a release or a new leader within watchBound of it
// (with --interval 10s, which no longer means anything), the expiry within
// the failover bound of the kill, one error line on stderr for the cut and
// one for its end, the release it missed once the store answers again, and
// exit 0 on SIGINT.
func TestLeaderWatchStores(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server test skipped in -short mode")
	}
	// Not parallel: it runs before the parallel tests, so that the failover
	// rounds and it do not starve each other's runners on a small machine.
	var wg sync.WaitGroup
	for _, sc := range failoverStores {
		wg.Go(func() {
			gt := goroutineTB{TB: t, prefix: sc.name + ": "}
			testLeaderWatch(gt, sc, sc.start(gt))
		})
	}
	wg.Wait()
}

func testLeaderWatch(t testing.TB, sc storeCase, addr string) {
	const resource = "runner-watch"
	// A TTL of 4 s rather than the failover rounds' 2 s: a runner then
	// stalls 650 ms before its watchdog stops its command and it gives its
	// term up, which a busy machine could otherwise make it do in the
	// middle of the sequence.
	url := func(addr string) string { return strings.ReplaceAll(sc.url(addr), "=2s", "=4s") }
	const ttl = 4 * time.Second
	log := logPath(t)
	proxy := testserver.NewProxy(t, addr)
	// waitTime=1s: a cut connection fails the watcher's read within a
	// second and its request timeout.
	w := exec.Command(runnerBin, "leader", "--store", url(proxy.Addr())+"&waitTime=1s", "--resource", resource,
		"--watch", "--json", "--interval", "10s", "--log-level", "warn")
	stdout, err := w.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := w.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	t.Cleanup(func() {
		_ = w.Process.Kill()
		<-exited
	})
	lines, errLines := make(chan timedLine, 64), make(chan timedLine, 64)
	stdoutDone := make(chan struct{})
	go func() {
		readLines(stdout, lines)
		close(stdoutDone)
	}()
	var errMu sync.Mutex
	var errText []string
	errDone := make(chan struct{})
	go func() {
		defer close(errDone)
		for l := range errLines {
			errMu.Lock()
			errText = append(errText, l.text)
			errMu.Unlock()
		}
	}()
	go readLines(stderr, errLines)
	go func() {
		<-errDone
		<-stdoutDone
		_ = w.Wait()
		close(exited)
	}()
	// stderrNow returns the command's own lines on stderr (not the store
	// clients' logs) but the warning that --interval is deprecated.
	stderrNow := func() []string {
		errMu.Lock()
		defer errMu.Unlock()
		var out []string
		for _, e := range errText {
			if strings.HasPrefix(e, "consul-leader leader: ") && !strings.Contains(e, "--interval is deprecated") {
				out = append(out, e)
			}
		}
		return out
	}

	var printed []jsonLine
	var lastTerm uint64
	// next returns the next line, which must show leader, within d.
	next := func(what, leader string, d time.Duration) timedLine {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("%s: leader --watch ended; stderr:\n%s", what, strings.Join(stderrNow(), "\n"))
			}
			var j jsonLine
			if err := json.Unmarshal([]byte(l.text), &j); err != nil {
				t.Fatalf("%s: line %q: %v", what, l.text, err)
			}
			printed = append(printed, j)
			if j.Leader != leader || (leader == "") != (j.Term == 0) || (leader != "" && j.Term <= lastTerm) {
				t.Fatalf("%s: line %q, want leader %q with a term above %d; lines so far %+v", what, l.text, leader, lastTerm, printed)
			}
			lastTerm = max(lastTerm, j.Term)
			return l
		case <-time.After(d):
			t.Fatalf("%s: no line within %v; lines so far %+v; stderr:\n%s", what, d, printed, strings.Join(stderrNow(), "\n"))
			return timedLine{}
		}
	}
	// within checks that line came at most watchBound after the change at.
	within := func(what string, line timedLine, at monoTime) {
		t.Helper()
		d := line.at.sub(at)
		if d > watchBound {
			t.Errorf("%s printed %v after it, want within %v", what, d, watchBound)
		}
		t.Logf("%s printed %v after it", what, d.Round(time.Millisecond))
	}
	start := func(name string) (*runnerProc, *run) {
		p := startRunnerBin(t, plainBin, name, log, "", "--store", url(addr), "--resource", resource,
			"--id", "runner-"+strings.ToLower(name), "--log-level", "warn")
		var r *run
		waitFor(t, 20*time.Second, name+"'s command", func() bool {
			for _, x := range runs(readLog(t, log)) {
				if x.name == name {
					r = x
				}
			}
			return r != nil
		})
		return p, r
	}

	next("nobody leads yet", "", 20*time.Second)

	a, ra := start("A")
	within("A's term (from its command's start)", next("A leads", "runner-a", 10*time.Second), ra.start)

	a.signal(syscall.SIGTERM)
	if code := a.wait(t, 10*time.Second); code != 0 {
		t.Errorf("runner A stopped by SIGTERM exited %d", code)
	}
	ra = runs(readLog(t, log))[0]
	within("A's release (from its command's end)", next("A released", "", 10*time.Second), ra.end)

	b, rb := start("B")
	within("B's term", next("B leads", "runner-b", 10*time.Second), rb.start)

	killed := monoNow()
	b.kill()
	// The session expires about a TTL after B's last renewal; the bound is
	// the failover tests' for a TTL of 4 s.
	l := next("B's session expired", "", 2*ttl+3*time.Second)
	t.Logf("B's expiry printed %v after its kill", l.at.sub(killed).Round(time.Millisecond))

	c, rc := start("C")
	within("C's term", next("C leads", "runner-c", 10*time.Second), rc.start)

	// The watcher's connection is cut: an error on stderr, once; C's
	// release meanwhile is printed once the store answers again.
	proxy.Cut()
	waitFor(t, 10*time.Second, "error line on stderr", func() bool { return len(stderrNow()) > 0 })
	c.signal(syscall.SIGTERM)
	c.wait(t, 10*time.Second)
	time.Sleep(2 * time.Second) // failed reads, retried
	if e := stderrNow(); len(e) != 1 || !strings.Contains(e[0], "retrying") {
		t.Errorf("stderr while cut off: %q, want one error line", e)
	}
	proxy.Heal()
	// The retry delay has grown to at most 5 s (±20 %) by now; the read
	// after it is one round trip.
	next("C released (seen after the cut)", "", 10*time.Second)
	// stderr is read apart from stdout: its line may come a moment later.
	waitFor(t, 5*time.Second, "recovery line on stderr", func() bool { return len(stderrNow()) >= 2 })
	if e := stderrNow(); len(e) != 2 || !strings.Contains(e[1], "answers again") {
		t.Errorf("stderr after the cut healed: %q, want the error line and the recovery", e)
	}

	_ = w.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("leader --watch still runs 10s after SIGINT")
	}
	if code := w.ProcessState.ExitCode(); code != 0 {
		t.Errorf("leader --watch exited %d after SIGINT, want 0", code)
	}
	for l := range lines {
		t.Errorf("line after the last change: %q", l.text)
	}
	if e := stderrNow(); len(e) != 2 {
		t.Errorf("stderr: %q, want only the error line and the recovery", e)
	}
	errMu.Lock()
	if len(errText) == 0 || !strings.Contains(errText[0], "--interval is deprecated") {
		t.Errorf("stderr: %q, want the warning that --interval is deprecated first", errText)
	}
	errMu.Unlock()
}
