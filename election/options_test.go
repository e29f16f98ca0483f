package election_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/election"
)

func TestOptionsDefaults(t *testing.T) {
	o := election.Options{Resource: "r"}.WithDefaults()
	if o.TTL != election.DefaultTTL || o.RenewInterval != election.DefaultTTL/3 ||
		o.RetryInterval != election.DefaultRetryInterval || o.WaitTime != election.DefaultWaitTime ||
		o.RequestTimeout != election.DefaultTTL/5 || o.ID == "" || o.Logger == nil {
		t.Fatalf("defaults: %+v", o)
	}
	if o := (election.Options{Resource: "r", TTL: time.Hour}).WithDefaults(); o.RequestTimeout != election.MaxRequestTimeout {
		t.Errorf("RequestTimeout for a 1 h TTL = %v, want the cap %v", o.RequestTimeout, election.MaxRequestTimeout)
	}
	if err := (election.Options{Resource: "billing-cron"}).Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name  string
		o     election.Options
		field string
		rule  string
	}{
		{"no resource", election.Options{}, "Resource", "is required"},
		{"space", election.Options{Resource: "a b"}, "Resource", "may contain only"},
		{"slash", election.Options{Resource: "a/"}, "Resource", "must not start or end"},
		{"double slash", election.Options{Resource: "a//b"}, "Resource", "//"},
		{"long resource", election.Options{Resource: strings.Repeat("a", 129)}, "Resource", "at most 128"},
		{"control id", election.Options{Resource: "r", ID: "a\x00"}, "ID", "printable"},
		{"long id", election.Options{Resource: "r", ID: strings.Repeat("i", 257)}, "ID", "at most 256"},
		{"big value", election.Options{Resource: "r", Value: make([]byte, election.MaxValueSize+1)}, "Value", "at most"},
		{"negative ttl", election.Options{Resource: "r", TTL: -1}, "TTL", "at least"},
		{"tiny ttl", election.Options{Resource: "r", TTL: time.Millisecond}, "TTL", "at least"},
		{"negative renew", election.Options{Resource: "r", RenewInterval: -1}, "RenewInterval", "negative"},
		{"renew >= ttl", election.Options{Resource: "r", TTL: 10 * time.Second, RenewInterval: 10 * time.Second}, "RenewInterval", "less than"},
		{"renew + timeout too long", election.Options{Resource: "r", TTL: 10 * time.Second, RenewInterval: 7 * time.Second, RequestTimeout: 2 * time.Second}, "RenewInterval", "less than"},
		{"negative retry", election.Options{Resource: "r", RetryInterval: -1}, "RetryInterval", "negative"},
		{"negative wait", election.Options{Resource: "r", WaitTime: -1}, "WaitTime", "negative"},
		{"negative timeout", election.Options{Resource: "r", RequestTimeout: -1}, "RequestTimeout", "negative"},
		{"dotdot segment", election.Options{Resource: "x/../y"}, "Resource", `segment "." or ".."`},
		{"dot segment", election.Options{Resource: "x/./z"}, "Resource", `segment "." or ".."`},
		{"dot alone", election.Options{Resource: "."}, "Resource", `segment "." or ".."`},
		{"dotdot alone", election.Options{Resource: ".."}, "Resource", `segment "." or ".."`},
		{"leading dot segment", election.Options{Resource: "./a"}, "Resource", `segment "." or ".."`},
		{"trailing dotdot segment", election.Options{Resource: "a/.."}, "Resource", `segment "." or ".."`},
		{"hash tag", election.Options{Resource: "a{b}"}, "Resource", "may contain only"},
		{"percent", election.Options{Resource: "a%2Fb"}, "Resource", "may contain only"},
		{"huge ttl", election.Options{Resource: "r", TTL: election.MaxTTL + 1}, "TTL", "at most 24h"},
		{"max int ttl", election.Options{Resource: "r", TTL: math.MaxInt64}, "TTL", "at most"},
		{"tiny renew", election.Options{Resource: "r", RenewInterval: time.Nanosecond}, "RenewInterval", "at least 1ms"},
		{"tiny retry", election.Options{Resource: "r", RetryInterval: time.Nanosecond}, "RetryInterval", "at least 1ms"},
		{"huge retry", election.Options{Resource: "r", RetryInterval: election.MaxRetryInterval + 1}, "RetryInterval", "at most 24h"},
		{"tiny wait", election.Options{Resource: "r", WaitTime: time.Nanosecond}, "WaitTime", "at least 1ms"},
		{"huge wait", election.Options{Resource: "r", WaitTime: math.MaxInt64}, "WaitTime", "at most 24h"},
		{"tiny timeout", election.Options{Resource: "r", RequestTimeout: time.Nanosecond}, "RequestTimeout", "at least 1ms"},
		{"timeout = ttl", election.Options{Resource: "r", TTL: 10 * time.Second, RequestTimeout: 10 * time.Second}, "RequestTimeout", "less than"},
		{"timeout alone too long", election.Options{Resource: "r", TTL: 10 * time.Second, RequestTimeout: 9 * time.Second}, "RequestTimeout", "less than"},
		{"timeout + default renew", election.Options{Resource: "r", TTL: 10 * time.Second, RequestTimeout: 6 * time.Second}, "RequestTimeout", "RenewInterval + RequestTimeout"},
		{"renew + default timeout", election.Options{Resource: "r", TTL: 10 * time.Second, RenewInterval: 8 * time.Second}, "RenewInterval", "RenewInterval + RequestTimeout"},
		{"both set", election.Options{Resource: "r", TTL: 10 * time.Second, RenewInterval: 5 * time.Second, RequestTimeout: 5 * time.Second}, "RenewInterval", "RenewInterval + RequestTimeout"},
		{"sum would overflow", election.Options{Resource: "r", RenewInterval: math.MaxInt64, RequestTimeout: math.MaxInt64}, "RenewInterval", "at most"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.o.Validate()
			var oe *election.OptionError
			if !errors.As(err, &oe) || !errors.Is(err, election.ErrInvalidOptions) {
				t.Fatalf("Validate() = %v, want an *OptionError", err)
			}
			if oe.Field != tc.field || !strings.Contains(err.Error(), tc.rule) {
				t.Errorf("Validate() = %q (field %s); want field %s and rule containing %q", err, oe.Field, tc.field, tc.rule)
			}
		})
	}
}

// The bounds are inclusive, and the floors are the documented constants.
func TestOptionsBoundsInclusive(t *testing.T) {
	for _, o := range []election.Options{
		{Resource: "r", TTL: election.MaxTTL},
		{Resource: "r", TTL: election.MinTTL},
		{Resource: "r", RenewInterval: election.MinRenewInterval, RetryInterval: election.MinRetryInterval,
			WaitTime: election.MinWaitTime, RequestTimeout: election.MinRequestTimeout},
		{Resource: "r", RetryInterval: election.MaxRetryInterval, WaitTime: election.MaxWaitTime},
	} {
		if err := o.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v; want valid", o, err)
		}
	}
}

// Every name of the conformance suite's set is valid, as the suite needs.
func TestValidResourceNames(t *testing.T) {
	names := conformance.ValidResourceNames()
	if len(names) < 100 {
		t.Fatalf("only %d names", len(names))
	}
	seen := map[string]bool{}
	for _, n := range names {
		if err := election.ValidateResource(n); err != nil {
			t.Errorf("ValidateResource(%q) = %v", n, err)
		}
		if seen[n] {
			t.Errorf("name %q twice", n)
		}
		seen[n] = true
	}
}
