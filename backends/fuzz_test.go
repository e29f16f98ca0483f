package backends_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/election"
)

// FuzzOpenURL opens URLs of arbitrary parameters on the backends that do
// not connect when opened (memory, consul, redis). Every URL Open accepts
// must yield options that pass Validate; every one it refuses must be
// refused with an error that names a parameter of the URL (or, for an
// option error, the option it sets); nothing panics.
func FuzzOpenURL(f *testing.F) {
	for _, seed := range [][5]string{
		{"memory://f", "ttl", "NaN", "waitTime", "1e10"},
		{"memory://f", "ttl", "1e300", "renewInterval", "5s"},
		{"memory://f", "retryInterval", "1ns", "requestTimeout", "14s"},
		{"memory://f", "resource", "x/../y", "id", "a"},
		{"memory://f", "ttl", "20", "renewInterval", "0.5"},
		{"consul://127.0.0.1:1", "checkTTL", "2s", "ttl", ""},
		{"consul://127.0.0.1:1", "checkTTL", "2s", "ttl", "3s"},
		{"consul://127.0.0.1:1", "lockDelay", "1e10", "ttl", "10s"},
		{"redis://127.0.0.1:1", "dial_timeout", "10000000000", "ttl", "1"},
		{"redis://127.0.0.1:1", "keyPrefix", "p", "waitTime", "Inf"},
	} {
		f.Add(seed[0], seed[1], seed[2], seed[3], seed[4])
	}
	f.Fuzz(func(t *testing.T, base, k1, v1, k2, v2 string) {
		switch base {
		case "memory://f", "consul://127.0.0.1:1", "redis://127.0.0.1:1":
		default:
			base = "memory://f"
		}
		q := url.Values{}
		q.Add(k1, v1)
		if k2 != "" {
			q.Add(k2, v2)
		}
		if !q.Has("resource") {
			q.Set("resource", "fuzz")
		}
		raw := base + "?" + q.Encode()
		var o backends.Opener
		ctx := context.Background()
		el, err := o.Open(ctx, raw, election.Options{})
		if err == nil {
			defer el.Close(ctx)
			u, _ := url.Parse(raw)
			opts, _, perr := backends.ParseOptions(u.Query(), election.Options{})
			if perr != nil {
				t.Fatalf("Open(%q) accepted what ParseOptions refuses: %v", raw, perr)
			}
			if strings.HasPrefix(base, "consul") && opts.TTL == 0 && q.Has("checkTTL") {
				return // the TTL comes from checkTTL, checked by consul's tests
			}
			if verr := opts.Validate(); verr != nil {
				t.Fatalf("Open(%q) accepted options that do not validate: %v", raw, verr)
			}
			return
		}
		if !errors.Is(err, backends.ErrBadURL) && !errors.Is(err, election.ErrInvalidOptions) {
			t.Fatalf("Open(%q) = %v; want ErrBadURL or ErrInvalidOptions", raw, err)
		}
		if !namesParameter(err, q) {
			t.Fatalf("Open(%q) = %v; names none of the parameters %v", raw, err, q)
		}
	})
}

// namesParameter reports whether err names a key of q, or is an option
// error on the option a key of q sets.
func namesParameter(err error, q url.Values) bool {
	var oe *election.OptionError
	isOption := errors.As(err, &oe)
	for k := range q {
		if k == "" {
			continue
		}
		if strings.Contains(err.Error(), k) || isOption && strings.EqualFold(strings.TrimPrefix(oe.Field, "URL parameter "), k) {
			return true
		}
	}
	if isOption && oe.Field == "Consul.TTL" || isOption && oe.Field == "TTL" && q.Has("checkTTL") {
		return true // the TTL checkTTL bounds
	}
	return false
}
