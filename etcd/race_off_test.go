//go:build !race

package etcd

// raceEnabled reports a build with the race detector.
const raceEnabled = false
