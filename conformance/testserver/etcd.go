package testserver

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"
)

// EtcdOptions configure StartEtcd. The zero value starts a plain-text,
// single-member etcd with its default settings.
type EtcdOptions struct {
	// Args are extra etcd flags, for example "--auto-compaction-retention=1".
	Args []string
	// TLS serves the client port over TLS only: StartEtcd creates a
	// certificate authority and a certificate for 127.0.0.1, and
	// EtcdServer.ClientTLS and TLSFiles give what clients need.
	TLS bool
	// ClientCertAuth, with TLS, requires clients to present a certificate
	// signed by that authority (etcd's --client-cert-auth).
	ClientCertAuth bool
	// StartTimeout bounds how long the member may take to become healthy.
	// Default: 30 s.
	StartTimeout time.Duration
}

// EtcdServer is a single-member etcd cluster run by a test, listening on
// free loopback ports, with its data in a temporary directory that survives
// Restart.
type EtcdServer struct {
	bin        string
	dir        string
	clientPort int
	peerPort   int
	opts       EtcdOptions
	tlsFiles   tlsFiles
	tls        *tls.Config // trusts the server, with its client certificate; nil without TLS

	mu       sync.Mutex
	proc     *Process
	cleanups serverCleanups // of every process started, run when the StartEtcd test ends
}

// StartEtcd starts an etcd member and waits until it serves requests. The
// binary comes from ETCD_BINARY or PATH (see Binary); the member is stopped
// when t ends.
func StartEtcd(t testing.TB, opts EtcdOptions) *EtcdServer {
	t.Helper()
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	s := &EtcdServer{
		bin:  Binary(t, "ETCD_BINARY", "etcd", "bash .ci/servers builds it"),
		dir:  t.TempDir(),
		opts: opts,
	}
	if opts.TLS {
		s.tlsFiles, s.tls = newTLSFiles(t, t.TempDir())
		// The server's certificate is valid for clients too.
		pair, err := tls.LoadX509KeyPair(s.tlsFiles.cert, s.tlsFiles.key)
		if err != nil {
			t.Fatalf("testserver: etcd client certificate: %v", err)
		}
		s.tls.Certificates = []tls.Certificate{pair}
	}
	s.clientPort = FreePort(t)
	for s.peerPort = FreePort(t); s.peerPort == s.clientPort; s.peerPort = FreePort(t) {
	}
	s.cleanups.runAtEnd(t)
	s.start(t)
	return s
}

// Endpoint is the member's client address, host:port, as an etcd client
// or an etcd:// URL takes it.
func (s *EtcdServer) Endpoint() string { return Addr(s.clientPort) }

// URL is the member's client URL, with its http or https scheme.
func (s *EtcdServer) URL() string { return s.scheme() + "://" + s.Endpoint() }

// ClientTLS returns a TLS configuration that trusts the member's
// certificate and presents a client certificate it accepts, or nil when the
// member was not started with TLS.
func (s *EtcdServer) ClientTLS() *tls.Config {
	if s.tls == nil {
		return nil
	}
	return s.tls.Clone()
}

// TLSFiles returns the PEM files of the member's certificate authority, and
// of a certificate and key it accepts from clients; empty without TLS.
func (s *EtcdServer) TLSFiles() (ca, cert, key string) {
	return s.tlsFiles.ca, s.tlsFiles.cert, s.tlsFiles.key
}

// Process returns the running etcd process.
func (s *EtcdServer) Process() *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

// Restart stops the member (SIGTERM) and starts it again on the same ports
// and data, waiting until it serves requests.
func (s *EtcdServer) Restart(t testing.TB) {
	t.Helper()
	s.Process().Stop()
	s.start(t)
}

// RestartEmpty stops the member (SIGTERM), deletes its data directory and
// starts it again on the same ports, as a new single-member cluster: every
// key, lease and revision is lost, as when a cluster is rebuilt empty.
func (s *EtcdServer) RestartEmpty(t testing.TB) {
	t.Helper()
	s.Process().Stop()
	if err := os.RemoveAll(s.dir); err != nil {
		t.Fatalf("testserver: delete etcd data: %v", err)
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		t.Fatalf("testserver: etcd data directory: %v", err)
	}
	s.start(t)
}

// Kill ends the member with SIGKILL, as a crash would. Start it again with
// Restart.
func (s *EtcdServer) Kill() { s.Process().Kill() }

func (s *EtcdServer) scheme() string {
	if s.opts.TLS {
		return "https"
	}
	return "http"
}

func (s *EtcdServer) args() []string {
	client := s.URL()
	peer := "http://" + Addr(s.peerPort)
	args := []string{
		"--name", "default",
		"--data-dir", s.dir,
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "default=" + peer,
		"--initial-cluster-state", "new",
		"--log-level", "warn",
	}
	if s.opts.TLS {
		args = append(args, "--cert-file", s.tlsFiles.cert, "--key-file", s.tlsFiles.key)
		if s.opts.ClientCertAuth {
			args = append(args, "--trusted-ca-file", s.tlsFiles.ca, "--client-cert-auth")
		}
	}
	return append(args, s.opts.Args...)
}

func (s *EtcdServer) start(t testing.TB) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: s.ClientTLS()}}
	lt := s.cleanups.tb(t)
	lt.Cleanup(hc.CloseIdleConnections)
	p := StartProcess(lt, "etcd", s.bin, s.args(), s.opts.StartTimeout, func(ctx context.Context) error {
		return s.healthy(ctx, hc)
	})
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
}

// healthy reports whether the member answers its /health endpoint, which
// needs an elected raft leader.
func (s *EtcdServer) healthy(ctx context.Context, hc *http.Client) error {
	return EtcdHealthy(ctx, hc, s.URL())
}

// EtcdHealthy reports whether the etcd member at baseURL (http://host:port)
// answers its /health endpoint with health "true", which needs an elected
// raft leader.
func EtcdHealthy(ctx context.Context, hc *http.Client, baseURL string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return err
	}
	var h struct {
		Health string `json:"health"`
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return fmt.Errorf("etcd /health: %s: %w", body, err)
	}
	if h.Health != "true" {
		return fmt.Errorf("etcd /health: %s", body)
	}
	return nil
}
