package testserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that, set to 1, turns a missing
// server binary from a skipped test into a failed one.
const RequireEnv = "CONSUL_LEADER_REQUIRE_SERVERS"

// ProvisionCommand is the command, run from the repository's root, that
// builds or installs every server the tests use and runs every test against
// them.
const ProvisionCommand = ".ci/test"

// skipNotice makes a test binary say once, on the first test it skips for a
// missing server, how to get the servers; the tests it skips after that say
// only which binary is missing. It is the package's only state, kept per
// process because the notice is about the process's environment.
var skipNotice sync.Once

// Binary returns the path of a server binary: the value of envVar if set,
// else name looked up on PATH. If neither is there it skips t, or fails it
// when RequireEnv is set; how explains how to get the binary.
//
// The first test of a test binary that skips logs the one line
// "real-server tests skipped: …" naming ProvisionCommand; later skips are
// one short line each.
func Binary(t testing.TB, envVar, name, how string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("testserver: %s=%s: %v", envVar, p, err)
		}
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	missing := fmt.Sprintf("no %s binary (set %s or put %s on PATH; %s)", name, envVar, name, how)
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("testserver: %s; %s=1 forbids skipping", missing, RequireEnv)
	}
	msg := "real-server test skipped: " + missing
	skipNotice.Do(func() {
		msg = fmt.Sprintf("real-server tests skipped: %s; run `%s` to provision Consul, etcd and Redis and run every test", missing, ProvisionCommand)
	})
	t.Skip(msg)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testserver: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Process is a server process started by a test.
type Process struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer

	mu     sync.Mutex
	exited chan struct{}
	err    error
}

// StartProcess starts bin with args, logging its output to the test log on
// failure, and stops it (SIGTERM, then SIGKILL after 5 s) when t ends. ready
// is polled every 20 ms until it returns nil, for at most timeout.
func StartProcess(t testing.TB, name, bin string, args []string, timeout time.Duration, ready func(ctx context.Context) error) *Process {
	t.Helper()
	p := &Process{name: name, out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout = p.out
	p.cmd.Stderr = p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("testserver: start %s: %v", name, err)
	}
	go func() {
		err := p.cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("testserver: %s output:\n%s", name, p.out.String())
		}
	})
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := ready(ctx)
		cancel()
		if err == nil {
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("testserver: %s exited before it was ready: %v\n%s", name, p.exitErr(), p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("testserver: %s not ready after %v: %v\n%s", name, timeout, err, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// PID returns the process ID.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Output returns what the process printed so far.
func (p *Process) Output() string { return p.out.String() }

// Stop terminates the process and waits for it: SIGTERM, then SIGKILL after
// 5 s. It may be called more than once.
func (p *Process) Stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = syscall.Kill(-p.PID(), syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
		<-p.exited
	}
}

// Kill ends the process at once with SIGKILL, as a crash would.
func (p *Process) Kill() {
	_ = syscall.Kill(-p.PID(), syscall.SIGKILL)
	<-p.exited
}

func (p *Process) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return fmt.Errorf("exit status %d", ee.ExitCode())
	}
	return p.err
}

// Addr joins 127.0.0.1 and port.
func Addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 1<<20 { // keep the tail bounded
		b.buf.Reset()
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
