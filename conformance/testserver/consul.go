package testserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// consulHow tells how to get a Consul binary when none is found.
const consulHow = "bash .ci/servers builds it"

// consulStartTimeout bounds how long a Consul agent may take to elect itself
// and register its node.
const consulStartTimeout = 60 * time.Second

// ConsulOptions configure StartConsul.
type ConsulOptions struct {
	// ACL enables Consul's ACL system with a default policy of deny. The
	// server's ManagementToken then holds every right; other tokens must be
	// created with it.
	ACL bool

	// TLS adds an HTTPS listener, at HTTPSAddr, with a certificate for
	// 127.0.0.1 signed by a fresh certificate authority, at CAFile.
	TLS bool

	// HCL is extra agent configuration, passed with -hcl.
	HCL string
}

// ConsulServer is a single-node Consul agent in dev mode (a server holding
// its state in memory) listening on 127.0.0.1.
type ConsulServer struct {
	// Addr is the HTTP API address, host:port.
	Addr string
	// ManagementToken holds every right when ACLs are enabled; it is empty
	// otherwise.
	ManagementToken string
	// NodeName is the agent's node name.
	NodeName string
	// HTTPSAddr is the HTTPS API address with ConsulOptions.TLS.
	HTTPSAddr string
	// CAFile is the PEM file of the authority that signed the agent's
	// certificate, with ConsulOptions.TLS.
	CAFile string

	bin  string
	args []string

	mu       sync.Mutex
	proc     *Process
	cleanups serverCleanups // of every process started, run when the StartConsul test ends
}

// StartConsul starts a Consul agent in dev mode on free loopback ports and
// waits until it has elected itself leader and registered its node. The agent
// is stopped when t ends. The test is skipped when there is no Consul binary
// (see Binary).
func StartConsul(t testing.TB, o ConsulOptions) *ConsulServer {
	t.Helper()
	bin := Binary(t, "CONSUL_BINARY", "consul", consulHow)
	s := &ConsulServer{bin: bin, NodeName: "consul-leader-test"}
	ports := consulPorts(t, 5)
	s.Addr = Addr(ports[0])
	s.args = []string{
		"agent", "-dev",
		"-node", s.NodeName,
		"-client", "127.0.0.1",
		"-bind", "127.0.0.1",
		"-http-port", strconv.Itoa(ports[0]),
		"-server-port", strconv.Itoa(ports[1]),
		"-serf-lan-port", strconv.Itoa(ports[2]),
		"-serf-wan-port", strconv.Itoa(ports[3]),
		"-dns-port", "-1",
		"-grpc-port", "-1",
		"-grpc-tls-port", "-1",
		"-log-level", "warn",
	}
	if o.ACL {
		s.ManagementToken = newUUID(t)
		// The agent token lets the agent register its own node.
		s.args = append(s.args, "-hcl", fmt.Sprintf(
			`acl { enabled = true, default_policy = "deny", tokens { initial_management = %q, agent = %q } }`,
			s.ManagementToken, s.ManagementToken))
	}
	if o.TLS {
		httpsPort := ports[4]
		s.HTTPSAddr = Addr(httpsPort)
		files, _ := newTLSFiles(t, t.TempDir(), "server.dc1.consul")
		s.CAFile = files.ca
		s.args = append(s.args, "-https-port", strconv.Itoa(httpsPort), "-hcl", fmt.Sprintf(
			`tls { defaults { ca_file = %q, cert_file = %q, key_file = %q, verify_incoming = false } }`,
			files.ca, files.cert, files.key))
	}
	if o.HCL != "" {
		s.args = append(s.args, "-hcl", o.HCL)
	}
	s.cleanups.runAtEnd(t)
	s.start(t)
	return s
}

// Restart stops the agent and starts it again on the same ports, and waits
// until it is ready; the new process is stopped when the test that started
// the agent ends, after what that test started before the restart. A dev agent
// keeps its state in memory: every session, key and index is lost.
func (s *ConsulServer) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t)
}

// Stop stops the agent gracefully; Restart starts it again.
func (s *ConsulServer) Stop() { s.Process().Stop() }

// Kill ends the agent at once with SIGKILL, as a crash would; Restart
// starts it again.
func (s *ConsulServer) Kill() { s.Process().Kill() }

// Process returns the agent's current process.
func (s *ConsulServer) Process() *Process {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.proc
}

func (s *ConsulServer) start(t testing.TB) {
	t.Helper()
	p := StartProcess(s.cleanups.tb(t), "consul", s.bin, s.args, consulStartTimeout, s.ready)
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
}

// ready reports nil once the agent has a Raft leader and its node is in the
// catalog, so that sessions can be created on it.
func (s *ConsulServer) ready(ctx context.Context) error {
	var leader string
	if err := s.get(ctx, "/v1/status/leader", &leader); err != nil {
		return err
	}
	if leader == "" {
		return fmt.Errorf("no leader yet")
	}
	var node *struct{ Node struct{ Node string } }
	if err := s.get(ctx, "/v1/catalog/node/"+s.NodeName, &node); err != nil {
		return err
	}
	if node == nil || node.Node.Node != s.NodeName {
		return fmt.Errorf("node %s not registered yet", s.NodeName)
	}
	return nil
}

func (s *ConsulServer) get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.Addr+path, nil)
	if err != nil {
		return err
	}
	if s.ManagementToken != "" {
		req.Header.Set("X-Consul-Token", s.ManagementToken)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	return json.Unmarshal(body, out)
}

// consulPorts returns n distinct ports of 127.0.0.1 that were free for TCP
// and UDP (serf uses both) a moment ago. They are drawn at random below the
// kernel's ephemeral range, which FreePort and every outgoing connection
// draw from, so that none of those can take a port before the agent binds
// it, nor between a Stop and a Restart.
func consulPorts(t testing.TB, n int) []int {
	t.Helper()
	lo, hi := 15000, ephemeralLow()
	if hi-lo < 1000 {
		ports := make([]int, n)
		for i := range ports {
			ports[i] = FreePort(t)
		}
		return ports
	}
	var ports []int
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			_ = c.Close()
		}
	}()
	for tries := 0; len(ports) < n; tries++ {
		if tries > 1000 {
			t.Fatalf("testserver: no free ports between %d and %d", lo, hi)
		}
		p := lo + mrand.IntN(hi-lo)
		tl, err := net.Listen("tcp", Addr(p))
		if err != nil {
			continue
		}
		ul, err := net.ListenPacket("udp", Addr(p))
		if err != nil {
			_ = tl.Close()
			continue
		}
		closers = append(closers, tl, ul)
		ports = append(ports, p)
	}
	return ports
}

// ephemeralLow is the first port of the kernel's ephemeral range.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// newUUID returns a random UUID, the form Consul requires of ACL secrets.
func newUUID(t testing.TB) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testserver: uuid: %v", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
