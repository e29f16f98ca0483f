package election_test

import (
	"errors"
	"strings"
	"testing"
	"time"

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
