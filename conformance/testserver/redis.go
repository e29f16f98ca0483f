package testserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RedisOptions configure a Redis server started by StartRedis.
type RedisOptions struct {
	// Args are extra redis-server arguments, for example
	// []string{"--notify-keyspace-events", "Kgx"}.
	Args []string

	// TLS makes the server accept TLS connections only: StartRedis creates a
	// certificate authority and a server certificate for 127.0.0.1, and
	// RedisServer.ClientTLS returns a client configuration that trusts it.
	// Clients need no certificate of their own.
	TLS bool

	// Cluster starts the server as a one-node Redis Cluster that serves
	// every hash slot, so that cluster clients and the cluster rules (all
	// keys of a script in one slot) can be tested with a single process.
	Cluster bool

	// Password, if set, is the password of the default user; the readiness
	// check authenticates with it.
	Password string
}

// RedisServer is a redis-server process started by StartRedis, listening on
// 127.0.0.1 with persistence disabled.
type RedisServer struct {
	t        testing.TB
	bin      string
	port     int
	opts     RedisOptions
	args     []string
	tls      *tls.Config
	tlsFiles tlsFiles

	mu       sync.Mutex
	proc     *Process
	cleanups serverCleanups // of every process started, run when the StartRedis test ends
}

// StartRedis starts a redis-server on a free port of 127.0.0.1, waits until it
// answers PING (and, for a cluster, until every slot is served), and stops
// it when t ends. The binary comes from REDIS_BINARY or PATH (see Binary).
func StartRedis(t testing.TB, opts RedisOptions) *RedisServer {
	t.Helper()
	s := &RedisServer{
		t:    t,
		bin:  Binary(t, "REDIS_BINARY", "redis-server", "Debian's redis-server package has it"),
		port: FreePort(t),
		opts: opts,
	}
	dir := t.TempDir()
	s.args = []string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir}
	if opts.TLS {
		files, clientConf := newTLSFiles(t, dir)
		s.tls, s.tlsFiles = clientConf, files
		s.args = append(s.args, "--port", "0", "--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", files.cert, "--tls-key-file", files.key,
			"--tls-ca-cert-file", files.ca, "--tls-auth-clients", "no")
	} else {
		s.args = append(s.args, "--port", strconv.Itoa(s.port))
	}
	if opts.Password != "" {
		s.args = append(s.args, "--requirepass", opts.Password)
	}
	if opts.Cluster {
		s.args = append(s.args, "--cluster-enabled", "yes", "--cluster-config-file", dir+"/nodes.conf")
	}
	s.args = append(s.args, opts.Args...)
	s.cleanups.runAtEnd(t)
	s.start()
	if opts.Cluster {
		s.assignSlots()
	}
	return s
}

// Addr is the server's host:port on 127.0.0.1.
func (s *RedisServer) Addr() string { return Addr(s.port) }

// Port is the server's TCP port.
func (s *RedisServer) Port() int { return s.port }

// ClientTLS returns a TLS configuration that trusts the server's certificate,
// or nil when the server was not started with TLS.
func (s *RedisServer) ClientTLS() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Clone()
}

// TLSFiles returns the PEM files of the server's certificate authority, and
// of a certificate and key it signed; empty without TLS.
func (s *RedisServer) TLSFiles() (ca, cert, key string) {
	return s.tlsFiles.ca, s.tlsFiles.cert, s.tlsFiles.key
}

// Process returns the current server process.
func (s *RedisServer) Process() *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// Restart stops the server (SIGTERM) and starts it again on the same port;
// the new process is stopped when the test that started the server ends,
// after what that test started before the restart.
// Persistence is disabled, so the restarted server is empty: every key is
// lost, as on a failover to a replica that had not received them.
func (s *RedisServer) Restart() {
	s.t.Helper()
	s.Process().Stop()
	s.start()
	if s.opts.Cluster {
		s.assignSlots()
	}
}

// Kill ends the server with SIGKILL, as a crash would. Restart starts it again.
func (s *RedisServer) Kill() { s.Process().Kill() }

func (s *RedisServer) start() {
	s.t.Helper()
	p := StartProcess(s.cleanups.tb(s.t), "redis-server", s.bin, s.args, 10*time.Second, func(ctx context.Context) error {
		reply, err := s.do(ctx, "PING")
		if err != nil {
			return err
		}
		if reply != "PONG" {
			return fmt.Errorf("PING answered %q", reply)
		}
		return nil
	})
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
}

// assignSlots gives every hash slot to the single cluster node and waits for
// the cluster to be ready.
func (s *RedisServer) assignSlots() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// After a restart the node's configuration file still assigns them.
	if _, err := s.do(ctx, "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil && !strings.Contains(err.Error(), "busy") {
		s.t.Fatalf("testserver: assign cluster slots: %v", err)
	}
	for {
		info, err := s.do(ctx, "CLUSTER", "INFO")
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("testserver: cluster not ready: %v %q", err, info)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// do sends one command on a new connection and returns its reply as text.
func (s *RedisServer) do(ctx context.Context, args ...string) (string, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", s.Addr())
	if err != nil {
		return "", err
	}
	defer c.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(deadline)
	}
	if s.tls != nil {
		tc := tls.Client(c, s.tls.Clone())
		if err := tc.HandshakeContext(ctx); err != nil {
			return "", err
		}
		c = tc
	}
	r := bufio.NewReader(c)
	if s.opts.Password != "" {
		if _, err := respRoundTrip(c, r, "AUTH", s.opts.Password); err != nil {
			return "", err
		}
	}
	return respRoundTrip(c, r, args...)
}

// respRoundTrip writes args as a RESP array and reads one reply.
func respRoundTrip(w io.Writer, r *bufio.Reader, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return "", err
	}
	return respReadReply(r)
}

// respReadReply reads a RESP2 reply; arrays are not needed by the harness.
func respReadReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}
