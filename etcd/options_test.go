package etcd

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

func TestOptionsValidate(t *testing.T) {
	valid := Options{Options: election.Options{Resource: "r"}}
	if err := valid.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cases := []struct {
		field string
		edit  func(o *Options)
	}{
		{"TTL", func(o *Options) { o.TTL = 2500 * time.Millisecond }},
		{"TTL", func(o *Options) { o.TTL = time.Second }},
		{"TTL", func(o *Options) { o.TTL = 1500 * time.Millisecond }},
		{"Prefix", func(o *Options) { o.Prefix = "ends/with/" }},
		{"Prefix", func(o *Options) { o.Prefix = "  " }},
		{"Prefix", func(o *Options) { o.Prefix = "bad\xffutf8" }},
		{"Resource", func(o *Options) { o.Resource = "" }},
	}
	for _, tc := range cases {
		o := valid
		tc.edit(&o)
		err := o.Validate()
		var oe *election.OptionError
		if !errors.As(err, &oe) || oe.Field != tc.field || !errors.Is(err, election.ErrInvalidOptions) {
			t.Errorf("%+v: Validate = %v, want an *election.OptionError for %s", o, err, tc.field)
		}
	}
	for _, ttl := range []time.Duration{2 * time.Second, 3 * time.Second, time.Minute} {
		o := valid
		o.TTL = ttl
		if err := o.Validate(); err != nil {
			t.Errorf("TTL %v: %v", ttl, err)
		}
	}
	o := valid
	o.Prefix = "/services/billing/leader"
	if err := o.Validate(); err != nil {
		t.Errorf("Prefix %q: %v", o.Prefix, err)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(nil, Options{Options: election.Options{Resource: "r"}}); !isOptionError(err, "client") {
		t.Errorf("New with a nil client = %v, want an OptionError on client", err)
	}
	if _, err := NewBackend(nil, Options{}); !isOptionError(err, "client") {
		t.Errorf("NewBackend with a nil client = %v, want an OptionError on client", err)
	}
}

func TestPrefix(t *testing.T) {
	for resource, want := range map[string]string{
		"billing-cron": "election/billing-cron",
		"jobs/nightly": "election/jobs%2Fnightly",
		"a:b.c_d":      "election/a:b.c_d",
	} {
		if got := DefaultPrefix(resource); got != want {
			t.Errorf("DefaultPrefix(%q) = %q, want %q", resource, got, want)
		}
	}
	// The election of "a" must not see the keys of "a/b".
	if strings.HasPrefix(DefaultPrefix("a/b")+"/", DefaultPrefix("a")+"/") {
		t.Error(`the prefix of "a/b" lies under that of "a"`)
	}

	b := &Backend{prefix: "custom/leader", resource: "r"}
	if p, err := b.Prefix("r"); err != nil || p != "custom/leader" {
		t.Errorf("Prefix(r) = %q, %v", p, err)
	}
	if _, err := b.Prefix("other"); !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("Prefix(other) on a backend with a Prefix for r = %v, want ErrInvalidOptions", err)
	}
	if _, err := (&Backend{}).Prefix("bad name"); !errors.Is(err, election.ErrInvalidOptions) {
		t.Errorf("Prefix of an invalid resource = %v", err)
	}
}

func TestValueEncoding(t *testing.T) {
	for _, tc := range []struct {
		id    string
		value []byte
		raw   string
	}{
		{"a", nil, "a"},
		{"a", []byte("10.0.0.1:80"), "a\n10.0.0.1:80"},
		{"a", []byte("multi\nline"), "a\nmulti\nline"},
	} {
		raw := encodeValue(tc.id, tc.value)
		if raw != tc.raw {
			t.Errorf("encodeValue(%q, %q) = %q, want %q", tc.id, tc.value, raw, tc.raw)
		}
		id, value := decodeValue(raw)
		if id != tc.id || string(value) != string(tc.value) {
			t.Errorf("decodeValue(%q) = %q, %q", raw, id, value)
		}
	}
	// A value written by another client is the leader's ID.
	if id, value := decodeValue("host-1"); id != "host-1" || value != nil {
		t.Errorf("foreign value decoded as %q, %q", id, value)
	}
}
