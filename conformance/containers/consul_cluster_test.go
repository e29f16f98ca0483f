package containers

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/testcontainers/testcontainers-go"
	tcconsul "github.com/testcontainers/testcontainers-go/modules/consul"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"

	"github.com/consul-leader/consul-leader/consul"
)

// consulMember is one server of a Consul cluster in a container.
type consulMember struct {
	node  string
	c     *tcconsul.ConsulContainer
	addr  string // HTTP API, published on 127.0.0.1
	admin *api.Client
}

// TestConsulClusterFailover kills the Raft leader of a three-server Consul
// cluster while a candidate leads; the candidates campaign through the two
// other servers.
func TestConsulClusterFailover(t *testing.T) {
	members := startConsulCluster(t, 3)
	raftLeader := consulRaftLeader(t, members)
	var urls []*url.URL
	for i, m := range members {
		if i != raftLeader {
			urls = append(urls, &url.URL{Scheme: consul.Scheme, Host: m.addr, RawQuery: "lockDelay=1s"})
		}
	}
	const ttl, lockDelay = 10 * time.Second, time.Second
	l := newLeaders(t)
	els := campaign(t, l, consul.OpenURL, "cluster-failover", ttl, urls)
	f := failover{ttl: ttl, expiry: 2*ttl + lockDelay, slack: 5 * time.Second}
	f.run(t, l, els, func() { stopNow(t, members[raftLeader].c) })
}

// startConsulCluster starts n Consul servers on a Docker network of their
// own and waits until they have elected a Raft leader and registered every
// node. Short Raft timeouts (raft_multiplier 1) make a lost leader replaced
// within a few seconds. Everything is removed when t ends.
func startConsulCluster(t *testing.T, n int) []consulMember {
	t.Helper()
	requireDocker(t)
	ctx := startContext(t)
	nw, err := tcnetwork.New(ctx)
	testcontainers.CleanupNetwork(t, nw)
	if err != nil {
		t.Fatalf("create network: %v", err)
	}
	members := make([]consulMember, n)
	nodes := make([]string, n)
	for i := range members {
		nodes[i] = fmt.Sprintf("consul-%d", i+1)
	}
	for i := range members {
		m := &members[i]
		m.node = nodes[i]
		cmd := []string{"agent", "-server",
			"-bootstrap-expect", fmt.Sprint(n),
			"-node", m.node,
			"-client", "0.0.0.0",
			"-data-dir", "/consul/data",
			"-retry-interval", "1s",
			"-hcl", "performance { raft_multiplier = 1 }",
		}
		for _, peer := range nodes {
			cmd = append(cmd, "-retry-join", peer)
		}
		m.c, err = tcconsul.Run(ctx, consulStore.image(),
			testcontainers.WithCmd(cmd...),
			tcnetwork.WithNetwork([]string{m.node}, nw),
			onLoopback(),
			logTo(t),
		)
		testcontainers.CleanupContainer(t, m.c)
		if err != nil {
			t.Fatalf("start Consul server %s (%s): %v", m.node, consulStore.image(), err)
		}
		if m.addr, err = m.c.ApiEndpoint(ctx); err != nil {
			t.Fatalf("%s: address: %v", m.node, err)
		}
		m.admin = newConsulClient(t, m.addr)
	}
	for _, m := range members {
		waitUntil(ctx, t, "Consul server "+m.node, func(ctx context.Context) error {
			peers, err := m.admin.Status().PeersWithQueryOptions((&api.QueryOptions{}).WithContext(ctx))
			if err != nil {
				return err
			}
			if len(peers) != n {
				return fmt.Errorf("%d Raft peers, want %d", len(peers), n)
			}
			return consulReady(ctx, m.admin, nodes)
		})
	}
	return members
}

// consulRaftLeader returns the index of the member that is the cluster's
// Raft leader.
func consulRaftLeader(t *testing.T, members []consulMember) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader, err := members[0].admin.Status().LeaderWithQueryOptions((&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		t.Fatalf("Raft leader: %v", err)
	}
	host, _, err := net.SplitHostPort(leader)
	if err != nil {
		t.Fatalf("Raft leader %q: %v", leader, err)
	}
	for i, m := range members {
		ips, err := m.c.ContainerIPs(ctx)
		if err != nil {
			t.Fatalf("%s: addresses: %v", m.node, err)
		}
		for _, ip := range ips {
			if ip == host {
				t.Logf("Raft leader: %s (%s)", m.node, leader)
				return i
			}
		}
	}
	t.Fatalf("Raft leader %s is none of the members", leader)
	return -1
}
