package etcd

import (
	"testing"

	"github.com/consul-leader/consul-leader/conformance"
)

// TestConformance runs the suite on one etcd member, at the shortest TTL
// etcd grants; every candidate has a client and a proxy of its own.
func TestConformance(t *testing.T) {
	st := newStore(t, startEtcd(t))
	conformance.Run(t, conformance.Config{
		Name:     "etcd",
		TTL:      MinTTL,
		Parallel: true,
		Open:     func(t *testing.T) conformance.Store { return st },
	})
}
