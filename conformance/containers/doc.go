// Package containers runs the conformance suite of package conformance, and
// cluster tests, against real Consul, etcd and Redis servers started as
// containers with testcontainers-go. It has no code of its own: everything is
// in its tests, in a module of its own so that the library's module does not
// depend on testcontainers-go.
//
// With Docker running, one command runs everything, with nothing else
// installed:
//
//	cd conformance/containers && go test ./...
//
// The containers are removed when the tests end. Without a reachable Docker
// daemon the tests that need one are skipped, unless
// CONSUL_LEADER_REQUIRE_SERVERS=1, which makes them fail instead.
//
// # What runs
//
// For each store, conformance.Run with the TTLs of the backend's own
// conformance tests: Consul with plain sessions (TTL 10 s, lock-delay 1 s)
// and with check-bound sessions (TTL 2 s), etcd (TTL 2 s) and Redis (TTL 1 s).
// Every candidate reaches the server through a TCP proxy of its own on
// 127.0.0.1, which the suite cuts to partition it.
//
// Then a three-server Consul cluster and a three-member etcd cluster, each on
// a Docker network of its own: candidates campaign through the published
// ports of the members, the member that is the store's Raft leader is killed
// while a candidate leads, and the test checks that a leader exists again
// within the store's bounds (usually the same one, which keeps renewing
// through the surviving members), and that no two candidates ever lead at
// once.
//
// # Environment
//
// Each store's image is chosen by a variable; the default is the official
// image, pulled from its registry when it is not present locally:
//
//	CONSUL_IMAGE  default hashicorp/consul:1.16
//	ETCD_IMAGE    default gcr.io/etcd-development/etcd:v3.6.17
//	REDIS_IMAGE   default redis:7
//
// An image present locally, default or not, is used without pulling. A
// replacement image must accept the same container command as the official
// one: Consul's "agent" and its flags, "etcd" and its flags (etcd on
// PATH), and redis-server options as the arguments.
//
// To run the suite against a server that already runs instead, set its
// address; the conformance tests of that store then start no container:
//
//	CONSUL_ADDR   host:port of a Consul agent's HTTP API
//	ETCD_ADDR     host:port of an etcd member, or several separated by commas
//	REDIS_ADDR    host:port of a Redis server (standalone, not Cluster)
//
// The server must accept requests without credentials. The suite writes and
// deletes keys of resources named "conformance/..." under each backend's
// default key prefix, and destroys the sessions (Consul) or revokes the
// leases (etcd) holding them. The cluster tests always run containers.
//
// TESTCONTAINERS_RYUK_DISABLED and TESTCONTAINERS_HOST_OVERRIDE are set to
// "true" and "127.0.0.1" when unset: the tests remove their containers and
// networks themselves, so testcontainers-go's reaper container is not needed,
// and clients reach the servers on the loopback interface, where every port
// of the containers is published, and only there.
package containers
