package urlparam

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

func TestDurationOrSeconds(t *testing.T) {
	ok := map[string]time.Duration{
		"15": 15 * time.Second, "0.5": 500 * time.Millisecond, "1500ms": 1500 * time.Millisecond,
		"-5s": -5 * time.Second, "0": 0, "1e-12": 0, "9223372036": 9223372036 * time.Second,
		"2562047h47m16.854775807s": math.MaxInt64,
	}
	for v, want := range ok {
		if d, err := DurationOrSeconds("p", v); err != nil || d != want {
			t.Errorf("DurationOrSeconds(%q) = %v, %v; want %v", v, d, err, want)
		}
	}
	for _, v := range []string{"NaN", "nan", "Inf", "+Inf", "-Inf", "infinity", "1e300", "-1e300", "1e400", "9223372037", "0x1p80"} {
		_, err := DurationOrSeconds("waitTime", v)
		var oe *election.OptionError
		if !errors.As(err, &oe) || oe.Field != "URL parameter waitTime" || !strings.Contains(oe.Rule, "out of range") {
			t.Errorf("DurationOrSeconds(%q) = %v; want out of range on URL parameter waitTime", v, err)
		}
		if CheckSeconds("waitTime", v) == nil {
			t.Errorf("CheckSeconds(%q) accepted", v)
		}
	}
	for _, v := range []string{"", "abc", "5 s", "2562047h48m"} {
		_, err := DurationOrSeconds("ttl", v)
		var oe *election.OptionError
		if !errors.As(err, &oe) || oe.Field != "URL parameter ttl" || strings.Contains(oe.Rule, "out of range") {
			t.Errorf("DurationOrSeconds(%q) = %v; want a syntax error on URL parameter ttl", v, err)
		}
		if CheckSeconds("ttl", v) != nil {
			t.Errorf("CheckSeconds(%q) refused a value that is not a number", v)
		}
	}
}

func TestDuration(t *testing.T) {
	if d, err := Duration("lockDelay", "1.5s"); err != nil || d != 1500*time.Millisecond {
		t.Errorf("Duration(1.5s) = %v, %v", d, err)
	}
	for _, v := range []string{"1", "NaN", "1e10", "3000000h"} {
		_, err := Duration("lockDelay", v)
		var oe *election.OptionError
		if !errors.As(err, &oe) || oe.Field != "URL parameter lockDelay" {
			t.Errorf("Duration(%q) = %v; want an error on URL parameter lockDelay", v, err)
		}
	}
}
