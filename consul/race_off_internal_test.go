//go:build !race

package consul

// slowdown is how much slower the race detector makes the tests' own
// decoding and scheduling, for the bounds on latency.
const slowdown = 1

// raceEnabled reports a build with the race detector, whose shadow memory
// makes every allocation larger.
const raceEnabled = false
