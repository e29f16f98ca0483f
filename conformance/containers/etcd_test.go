package containers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcetcd "github.com/testcontainers/testcontainers-go/modules/etcd"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/etcd"
)

// TestEtcdConformance runs the suite with the TTL of the etcd package's own
// tests: the shortest the backend accepts.
func TestEtcdConformance(t *testing.T) {
	st := newEtcdStore(t, etcdServer(t))
	conformance.Run(t, conformance.Config{
		Name:     "etcd",
		TTL:      etcd.MinTTL,
		Parallel: true,
		Open:     func(*testing.T) conformance.Store { return st },
	})
}

// etcdServer returns the client endpoints (host:port) of the etcd cluster
// to test: those ETCD_ADDR names, or a single member in a container that is
// removed when t ends.
func etcdServer(t *testing.T) []string {
	t.Helper()
	if addrs := etcdStore.addrs(); len(addrs) > 0 {
		return addrs
	}
	requireDocker(t)
	ctx := startContext(t)
	c, err := tcetcd.Run(ctx, etcdStore.image(), onLoopback(), logTo(t))
	testcontainers.CleanupContainer(t, c)
	if err != nil {
		t.Fatalf("start etcd (%s): %v", etcdStore.image(), err)
	}
	endpoints := etcdEndpoints(ctx, t, c)
	waitEtcdHealthy(ctx, t, endpoints)
	return endpoints
}

// etcdEndpoints returns the published client endpoints of the members of c,
// as host:port.
func etcdEndpoints(ctx context.Context, t testing.TB, c *tcetcd.EtcdContainer) []string {
	t.Helper()
	urls, err := c.ClientEndpoints(ctx)
	if err != nil {
		t.Fatalf("etcd endpoints: %v", err)
	}
	endpoints := make([]string, len(urls))
	for i, u := range urls {
		endpoints[i] = strings.TrimPrefix(u, "http://")
	}
	return endpoints
}

// waitEtcdHealthy waits until every member answers its /health endpoint,
// which needs a Raft leader and a working quorum.
func waitEtcdHealthy(ctx context.Context, t testing.TB, endpoints []string) {
	t.Helper()
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	for _, ep := range endpoints {
		waitUntil(ctx, t, "etcd "+ep, func(ctx context.Context) error {
			return etcdHealthy(ctx, hc, ep)
		})
	}
}

func etcdHealthy(ctx context.Context, hc *http.Client, endpoint string) error {
	return testserver.EtcdHealthy(ctx, hc, "http://"+endpoint)
}

// newEtcdClient returns a client of endpoints, closed when t ends.
func newEtcdClient(t testing.TB, endpoints []string) *clientv3.Client {
	t.Helper()
	c, err := dialEtcd(endpoints)
	if err != nil {
		t.Fatalf("etcd client of %v: %v", endpoints, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// dialEtcd returns a client of endpoints, which the caller closes.
func dialEtcd(endpoints []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
}

// etcdConformance is the conformance.Store of one etcd cluster: every
// candidate is opened from an etcd:// URL, through proxies of its own, one
// per endpoint.
type etcdConformance struct {
	endpoints []string
	admin     *clientv3.Client
}

var _ conformance.SessionStore = (*etcdConformance)(nil)

// newEtcdStore returns the store of endpoints. Its admin client, which
// serves Remove, connects here, so that its goroutines predate those the
// suite checks.
func newEtcdStore(t testing.TB, endpoints []string) *etcdConformance {
	t.Helper()
	admin := newEtcdClient(t, endpoints)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := admin.Get(ctx, "connect"); err != nil {
		t.Fatalf("etcd admin client: %v", err)
	}
	return &etcdConformance{endpoints: endpoints, admin: admin}
}

func (s *etcdConformance) NewCandidate(t testing.TB, opts election.Options) (*election.Elector, conformance.Link, error) {
	link := make(proxies, len(s.endpoints))
	hosts := make([]string, len(s.endpoints))
	for i, ep := range s.endpoints {
		link[i] = testserver.NewProxy(t, ep)
		hosts[i] = link[i].Addr()
	}
	u := &url.URL{Scheme: "etcd", Host: strings.Join(hosts, ",")}
	el, err := etcd.OpenURL(context.Background(), u, opts)
	return el, link, err
}

// NewSharedSession opens a backend from an etcd:// URL, through proxies of
// its own, closed when t ends, and a shared session on it.
func (s *etcdConformance) NewSharedSession(t testing.TB, o election.SessionOptions) (*election.SharedSession, conformance.Link, error) {
	link := make(proxies, len(s.endpoints))
	hosts := make([]string, len(s.endpoints))
	for i, ep := range s.endpoints {
		link[i] = testserver.NewProxy(t, ep)
		hosts[i] = link[i].Addr()
	}
	u := &url.URL{Scheme: "etcd", Host: strings.Join(hosts, ",")}
	b, err := etcd.OpenBackend(context.Background(), u, election.Options{TTL: o.TTL})
	if err != nil {
		return nil, nil, err
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close the backend of a shared session: %v", err)
		}
	})
	ss, err := election.NewSharedSession(b, o)
	return ss, link, err
}

func (s *etcdConformance) Remove(t testing.TB, resource string, what conformance.Removal) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := s.admin.Get(ctx, etcd.DefaultPrefix(resource)+"/", clientv3.WithFirstCreate()...)
	if err != nil {
		t.Fatalf("read the leader key of %q: %v", resource, err)
	}
	if len(resp.Kvs) == 0 {
		t.Fatalf("no leader of %q to remove", resource)
	}
	kv := resp.Kvs[0]
	if what == conformance.RemoveRecord {
		_, err = s.admin.Delete(ctx, string(kv.Key))
	} else {
		_, err = s.admin.Revoke(ctx, clientv3.LeaseID(kv.Lease))
	}
	if err != nil {
		t.Fatalf("remove the %s of the leader of %q: %v", what, resource, err)
	}
}

// proxies is the Link of a candidate that reaches its store through several
// proxies, one per server address.
type proxies []*testserver.Proxy

func (ps proxies) Cut() {
	for _, p := range ps {
		p.Cut()
	}
}

func (ps proxies) Heal() {
	for _, p := range ps {
		p.Heal()
	}
}
