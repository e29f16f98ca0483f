package backends_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/election"
)

// Without ELECTION_BACKEND there is no store: FromEnv says which variable
// to set, and to what.
func TestFromEnvUnset(t *testing.T) {
	t.Setenv(backends.EnvVar, "")
	for _, open := range []func(context.Context, election.Options) (*election.Elector, error){
		backends.FromEnv, new(backends.Opener).FromEnv,
	} {
		el, err := open(context.Background(), election.Options{Resource: "r"})
		if err == nil {
			_ = el.Close(context.Background())
			t.Fatal("FromEnv with ELECTION_BACKEND unset opened an elector")
		}
		if !errors.Is(err, backends.ErrNoBackend) {
			t.Errorf("FromEnv error %v; want ErrNoBackend", err)
		}
		for _, want := range []string{"ELECTION_BACKEND", "consul://", "etcd://", "redis://", "memory://"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("FromEnv error %q does not mention %s", err, want)
			}
		}
	}
}

// Opener.FromEnv opens the store the variable names; electors of one
// Opener on memory://NAME share the store.
func TestOpenerFromEnvSharesMemory(t *testing.T) {
	t.Setenv(backends.EnvVar, "memory://env")
	var o backends.Opener
	ctx := context.Background()
	a, err := o.FromEnv(ctx, election.Options{Resource: "r", ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close(ctx)
	led := make(chan uint64, 1)
	_ = a.Start(ctx, func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			led <- l.Term
		}
		return nil
	})
	term := <-led
	b, err := o.FromEnv(ctx, election.Options{Resource: "r", ID: "b"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close(ctx)
	if l, err := b.Leader(ctx); err != nil || l.LeaderID != "a" || l.Term != term {
		t.Errorf("second elector sees %+v, %v; want a leading with term %d", l, err, term)
	}
}

// The package-level Open and FromEnv have no Opener to share a memory store
// through, so they refuse memory:// rather than open two stores that would
// both elect their candidate.
func TestPackageOpenRefusesMemory(t *testing.T) {
	ctx := context.Background()
	t.Setenv(backends.EnvVar, "memory://same")
	for name, open := range map[string]func() (*election.Elector, error){
		"Open": func() (*election.Elector, error) {
			return backends.Open(ctx, "memory://same", election.Options{Resource: "r"})
		},
		"FromEnv": func() (*election.Elector, error) { return backends.FromEnv(ctx, election.Options{Resource: "r"}) },
		"migrate": func() (*election.Elector, error) {
			return backends.Open(ctx, "migrate://?from=memory://a&to=memory://b", election.Options{Resource: "r"})
		},
	} {
		el, err := open()
		if err == nil {
			_ = el.Close(ctx)
			t.Errorf("%s opened memory:// without an Opener", name)
			continue
		}
		if !errors.Is(err, backends.ErrBadURL) || !strings.Contains(err.Error(), "Opener") {
			t.Errorf("%s: %v; want ErrBadURL pointing to Opener", name, err)
		}
	}
}

// URL durations that do not fit a time.Duration are refused as out of
// range, naming the parameter, instead of wrapping around.
func TestURLDurationsOutOfRange(t *testing.T) {
	var o backends.Opener
	for _, q := range []string{"ttl=NaN", "ttl=Inf", "ttl=-Inf", "ttl=1e300", "ttl=1e400", "waitTime=1e10",
		"renewInterval=-1e10", "retryInterval=9223372037", "requestTimeout=infinity"} {
		el, err := o.Open(context.Background(), "memory://d?"+q, election.Options{Resource: "r"})
		if err == nil {
			_ = el.Close(context.Background())
			t.Errorf("%s accepted", q)
			continue
		}
		name := strings.SplitN(q, "=", 2)[0]
		var oe *election.OptionError
		if !errors.Is(err, backends.ErrBadURL) || !errors.As(err, &oe) || oe.Field != "URL parameter "+name || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("%s: %v; want ErrBadURL and an out-of-range OptionError on URL parameter %s", q, err, name)
		}
	}
	// In range but beyond the options' bounds: refused by Validate, naming
	// the field.
	for q, field := range map[string]string{"ttl=1e9": "TTL", "waitTime=1e9": "WaitTime", "retryInterval=1e-9": "RetryInterval", "waitTime=1ns": "WaitTime"} {
		_, err := o.Open(context.Background(), "memory://d?"+q, election.Options{Resource: "r"})
		var oe *election.OptionError
		if !errors.As(err, &oe) || oe.Field != field {
			t.Errorf("%s: %v; want an OptionError on %s", q, err, field)
		}
	}
	for v, want := range map[string]string{"1.5": "1.5s", "0.001": "1ms", "1500ms": "1.5s", "2h": "2h0m0s", "-0": "0s"} {
		d, err := backends.ParseDuration("ttl", v)
		if err != nil || d.String() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %s", v, d, err, want)
		}
	}
}
