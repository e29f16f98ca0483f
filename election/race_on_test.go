//go:build race

package election_test

// raceEnabled reports a build with the race detector.
const raceEnabled = true
