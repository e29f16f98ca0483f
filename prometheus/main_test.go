package leaderprom_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine outlives the tests: every elector,
// session and server they open is closed by then.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
