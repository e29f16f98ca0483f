//go:build linux

// Command consul-leader runs a program only while it leads, on any store
// that backends.Open accepts (Consul, etcd, Redis), and tells who leads.
//
//	consul-leader run --store URL --resource NAME [flags] -- COMMAND [ARGS...]
//	consul-leader leader --store URL --resource NAME [--watch] [--json]
//
// See the output of consul-leader --help, and docs/runner.md.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
)

// Exit codes of the runner itself; a command's own exit code is passed on.
const (
	exitFailure  = 1 // the run failed (see the message)
	exitUsage    = 2 // bad input: flags, URL, grace, command
	exitNoLeader = 3 // leader: nobody leads
)

func main() {
	os.Exit(mainCode(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// mainCode runs the subcommand of args and returns the exit code.
func mainCode(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return exitUsage
	}
	switch args[0] {
	case "run":
		cfg, code, ok := parseRun(args[1:], stdout, stderr)
		if !ok {
			return code
		}
		return runMain(ctx, cfg, stderr)
	case "leader":
		cfg, code, ok := parseLeader(args[1:], stdout, stderr)
		if !ok {
			return code
		}
		return leaderMain(ctx, cfg, stdout, stderr)
	case watchdogMode:
		return watchdogMain(args[1:], stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, mainUsage)
		return 0
	}
	fmt.Fprintf(stderr, "consul-leader: unknown command %q\n\n%s", args[0], mainUsage)
	return exitUsage
}
