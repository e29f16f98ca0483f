package containers

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcetcd "github.com/testcontainers/testcontainers-go/modules/etcd"

	"github.com/consul-leader/consul-leader/etcd"
)

// TestEtcdClusterFailover kills the Raft leader of a three-member etcd
// cluster while a candidate leads; every candidate has a client of all three
// members.
func TestEtcdClusterFailover(t *testing.T) {
	requireDocker(t)
	ctx := startContext(t)
	// The module starts the members on a Docker network it creates and
	// removes with the first member.
	c, err := tcetcd.Run(ctx, etcdStore.image(),
		tcetcd.WithNodes("etcd-1", "etcd-2", "etcd-3"),
		onLoopback(),
		logTo(t),
	)
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("start etcd cluster (%s): %v", etcdStore.image(), err)
	}
	endpoints := etcdEndpoints(ctx, t, c)
	waitEtcdHealthy(ctx, t, endpoints)
	// The first member is the one the module lets us stop: make it the
	// Raft leader.
	moveEtcdLeader(ctx, t, endpoints, 0)

	const ttl = 5 * time.Second
	u := &url.URL{Scheme: "etcd", Host: strings.Join(endpoints, ",")}
	urls := []*url.URL{u, u, u}
	l := newLeaders(t)
	els := campaign(t, l, etcd.OpenURL, "cluster-failover", ttl, urls)
	f := failover{ttl: ttl, expiry: ttl, slack: 5 * time.Second}
	f.run(t, l, els, func() { stopNow(t, c) })
}

// moveEtcdLeader makes the member at endpoints[to] the cluster's Raft
// leader.
func moveEtcdLeader(ctx context.Context, t *testing.T, endpoints []string, to int) {
	t.Helper()
	admin := newEtcdClient(t, endpoints)
	st, err := admin.Status(ctx, endpoints[to])
	if err != nil {
		t.Fatalf("status of %s: %v", endpoints[to], err)
	}
	target := st.Header.MemberId
	waitUntil(ctx, t, "etcd Raft leader on "+endpoints[to], func(ctx context.Context) error {
		st, err := admin.Status(ctx, endpoints[to])
		if err != nil {
			return err
		}
		if st.Leader == target {
			return nil
		}
		// Only the leader transfers its leadership.
		for _, ep := range endpoints {
			s, err := admin.Status(ctx, ep)
			if err != nil || s.Header.MemberId != s.Leader {
				continue
			}
			c, err := dialEtcd([]string{ep})
			if err != nil {
				return err
			}
			_, err = c.MoveLeader(ctx, target)
			_ = c.Close()
			if err != nil {
				return err
			}
		}
		return errors.New("leadership not moved yet")
	})
	t.Logf("Raft leader: %s", endpoints[to])
}
