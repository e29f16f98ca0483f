package containers

import (
	"os"
	"testing"
)

// TestMain sets the testcontainers-go settings these tests run with unless
// the environment sets them: no reaper container (every test removes what
// it started), and clients that reach published ports on the loopback
// interface, the only one they are published on. It does so before any
// testcontainers-go call, since testcontainers-go reads them once.
func TestMain(m *testing.M) {
	for k, v := range map[string]string{
		"TESTCONTAINERS_RYUK_DISABLED": "true",
		"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
	} {
		if os.Getenv(k) == "" {
			if err := os.Setenv(k, v); err != nil {
				panic(err)
			}
		}
	}
	os.Exit(m.Run())
}
