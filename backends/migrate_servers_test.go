//go:build go1.25

package backends_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/conformance/testserver"
	"github.com/consul-leader/consul-leader/election"
)

// TestMigrationProcedureEtcdToConsul runs the three-step procedure on real
// servers: four processes move from etcd to Consul (check-bound sessions,
// TTL 2 s), through URLs as an application would configure them, each
// process reaching each store through a proxy that a crash cuts.
func TestMigrationProcedureEtcdToConsul(t *testing.T) {
	if testing.Short() {
		t.Skip("real-server migration skipped in -short mode")
	}
	etcdSrv := testserver.StartEtcd(t, testserver.EtcdOptions{})
	consulSrv := testserver.StartConsul(t, testserver.ConsulOptions{})
	proxies := map[string][2]*testserver.Proxy{}
	var opener backends.Opener
	t.Cleanup(func() { _ = opener.Close(context.Background()) }) // after the electors, before the servers
	ttl := 2 * time.Second
	runProcedure(t, procedureEnv{
		ttl: ttl,
		spawn: func(t *testing.T, mode, id string) *election.Elector {
			p := [2]*testserver.Proxy{testserver.NewProxy(t, etcdSrv.Endpoint()), testserver.NewProxy(t, consulSrv.Addr)}
			proxies[id] = p
			from := "etcd://" + p[0].Addr()
			to := "consul://" + p[1].Addr() + "?checkTTL=2s"
			u := map[string]string{"old": from, "new": to,
				"both": "migrate://?" + url.Values{"from": {from}, "to": {to}}.Encode()}[mode]
			el, err := opener.Open(context.Background(), u, election.Options{Resource: "jobs-" + t.Name(), ID: id, TTL: ttl})
			if err != nil {
				t.Fatalf("open %s: %v", u, err)
			}
			return el
		},
		cut:  func(id string) { proxies[id][0].Cut(); proxies[id][1].Cut() },
		heal: func(id string) { proxies[id][0].Heal(); proxies[id][1].Heal() },
	})
}
