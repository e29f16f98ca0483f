//go:build !race

package consul

// slowdown is how much slower the race detector makes the tests' own
// decoding and scheduling, for the bounds on latency.
const slowdown = 1
