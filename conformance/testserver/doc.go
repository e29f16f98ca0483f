// Package testserver runs real coordination stores for tests: a Consul agent,
// an etcd member or a Redis server started as a local process on free
// loopback ports, stopped by its PID when the test ends, and a fault-injecting
// TCP proxy that cuts and heals one client's connection to it.
//
// The server binaries are found through an environment variable
// (CONSUL_BINARY, ETCD_BINARY, REDIS_BINARY) or on PATH. When a binary is
// missing the test is skipped, unless CONSUL_LEADER_REQUIRE_SERVERS=1, which
// turns that skip into a failure so a test run can never silently not run.
// The first test a test binary skips says, in one line, to run the
// repository's .ci/test (ProvisionCommand), which builds or installs every
// server and runs every test against them.
package testserver
