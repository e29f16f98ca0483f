//go:build go1.25

package memory_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/memory/memorytest"
)

func open(t *testing.T) conformance.Store { return memorytest.New() }

// TestConformanceSynctest runs the suite in fake time: TTLs of 15 s pass in
// microseconds, and every timing is exact.
func TestConformanceSynctest(t *testing.T) {
	conformance.Run(t, conformance.Config{
		Name:  "memory",
		Open:  open,
		TTL:   15 * time.Second,
		Slack: 100 * time.Millisecond,
		Wrap:  synctest.Test,
	})
}

// TestConformanceRealTime runs the suite again in real time, with short TTLs.
func TestConformanceRealTime(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time suite skipped in -short mode")
	}
	conformance.Run(t, conformance.Config{
		Name:     "memory",
		Open:     open,
		TTL:      time.Second,
		Parallel: true,
	})
}
