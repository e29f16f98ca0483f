//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestBadInput: every bad input is refused with exit code 2 and a message
// naming what is wrong, before any store is reached (the stores named here
// do not exist).
func TestBadInput(t *testing.T) {
	const store = "redis://127.0.0.1:1"
	cases := []struct {
		name string
		args []string
		want string // in the message
	}{
		{"no command", nil, "Usage"},
		{"unknown command", []string{"lead"}, `unknown command "lead"`},
		{"unknown flag", []string{"run", "--bogus", "--store", store, "--resource", "r", "--", "true"}, "-bogus"},
		{"no store", []string{"run", "--resource", "r", "--", "true"}, "--store is required"},
		{"unparsable URL", []string{"run", "--store", "redis://[::1", "--resource", "r", "--", "true"}, "--store"},
		{"unknown scheme", []string{"run", "--store", "zookeeper://127.0.0.1:1", "--resource", "r", "--", "true"}, `unknown scheme "zookeeper"`},
		{"bad URL parameter", []string{"run", "--store", store + "?ttl=soon", "--resource", "r", "--", "true"}, "ttl"},
		{"unknown URL parameter", []string{"run", "--store", store + "?tll=1s", "--resource", "r", "--", "true"}, "tll"},
		{"no resource", []string{"run", "--store", store, "--", "true"}, "--resource is required"},
		{"bad resource", []string{"run", "--store", store, "--resource", "a//b", "--", "true"}, "Resource"},
		{"ttl twice", []string{"run", "--store", store + "?ttl=2s", "--resource", "r", "--ttl", "3s", "--", "true"}, "--ttl and the URL parameter ttl"},
		{"negative ttl", []string{"run", "--store", store, "--resource", "r", "--ttl", "-1s", "--", "true"}, "--ttl must be positive"},
		{"bad ttl", []string{"run", "--store", store, "--resource", "r", "--ttl", "1", "--", "true"}, "-ttl"},
		{"grace too long", []string{"run", "--store", store, "--resource", "r", "--grace", "1s", "--", "true"}, "--grace 1s does not fit"},
		{"grace too long for URL TTL", []string{"run", "--store", store + "?ttl=2s", "--resource", "r", "--grace", "200ms", "--", "true"}, "--grace 200ms does not fit"},
		{"negative grace", []string{"run", "--store", store, "--resource", "r", "--grace", "-1s", "--", "true"}, "--grace must not be negative"},
		{"no COMMAND", []string{"run", "--store", store, "--resource", "r"}, "no COMMAND"},
		{"COMMAND not found", []string{"run", "--store", store, "--resource", "r", "--", "no-such-command-here"}, "no-such-command-here"},
		{"bad log level", []string{"run", "--store", store, "--resource", "r", "--log-level", "loud", "--", "true"}, "--log-level"},
		{"leader argument", []string{"leader", "--store", store, "--resource", "r", "extra"}, `unexpected argument "extra"`},
		{"leader interval", []string{"leader", "--store", store, "--resource", "r", "--watch", "--interval", "0s"}, "--interval"},
		{"leader unknown flag", []string{"leader", "--store", store, "--resource", "r", "--grace", "1s"}, "-grace"},
		{"leader unknown scheme", []string{"leader", "--store", "zk://x", "--resource", "r"}, `unknown scheme "zk"`},
		{"watchdog by hand", []string{watchdogMode}, "internal"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := mainCode(context.Background(), c.args, &stdout, &stderr)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, exitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.want) {
				t.Errorf("stderr does not name %q:\n%s", c.want, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: %q", stdout.String())
			}
		})
	}
}

// TestBadInputExitCode: the binary itself exits with code 2.
func TestBadInputExitCode(t *testing.T) {
	out, err := exec.Command(runnerBin, "run", "--store", "redis://127.0.0.1:1", "--resource", "r", "--grace", "1h", "--", "true").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitUsage {
		t.Fatalf("err %v, want exit code %d; output:\n%s", err, exitUsage, out)
	}
	if !strings.Contains(string(out), "--grace 1h0m0s does not fit") {
		t.Errorf("output:\n%s", out)
	}
}

// TestHelp: --help prints the usage, with the guarantee, on stdout and
// exits 0.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"leader", "-h"}} {
		var stdout, stderr bytes.Buffer
		if code := mainCode(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Errorf("%v: exit code %d; stderr:\n%s", args, code, stderr.String())
		}
		if stdout.Len() == 0 || stderr.Len() != 0 {
			t.Errorf("%v: stdout %q, stderr %q", args, stdout.String(), stderr.String())
		}
	}
	var stdout bytes.Buffer
	mainCode(context.Background(), []string{"run", "--help"}, &stdout, &bytes.Buffer{})
	for _, want := range []string{"Guarantee", "TTL/20", "LEADER_TERM", "LEADER_ID", "LEADER_RESOURCE", "-grace", "-restart", "Exit codes"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("run --help lacks %q", want)
		}
	}
}
