package consul

import (
	"net/url"
	"testing"
	"time"
)

// TestURLDurationSyntax checks that checkTTL and lockDelay take the forms
// of the common duration parameters: a Go duration or a number of seconds.
func TestURLDurationSyntax(t *testing.T) {
	cases := []struct {
		query               string
		checkTTL, lockDelay time.Duration
	}{
		{"checkTTL=15", 15 * time.Second, 0},
		{"checkTTL=15s", 15 * time.Second, 0},
		{"checkTTL=1500ms", 1500 * time.Millisecond, 0},
		{"checkTTL=2.5", 2500 * time.Millisecond, 0},
		{"lockDelay=1.5", 0, 1500 * time.Millisecond},
		{"lockDelay=10", 0, 10 * time.Second},
		{"lockDelay=1s", 0, time.Second},
		{"lockDelay=none", 0, NoLockDelay},
		{"lockDelay=0", 0, NoLockDelay},
		{"lockDelay=0s", 0, NoLockDelay},
	}
	for _, tc := range cases {
		o, _, err := parseURL(&url.URL{Scheme: Scheme, Host: "127.0.0.1:8500", RawQuery: tc.query})
		if err != nil {
			t.Errorf("%s: %v", tc.query, err)
			continue
		}
		if o.CheckTTL != tc.checkTTL || o.LockDelay != tc.lockDelay {
			t.Errorf("%s: checkTTL %v lockDelay %v; want %v and %v", tc.query, o.CheckTTL, o.LockDelay, tc.checkTTL, tc.lockDelay)
		}
	}
}
