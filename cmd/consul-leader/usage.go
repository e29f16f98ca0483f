//go:build linux

package main

const mainUsage = `consul-leader runs a program only while it leads, and tells who leads.

Usage:
  consul-leader run --store URL --resource NAME [flags] -- COMMAND [ARGS...]
  consul-leader leader --store URL --resource NAME [--watch] [--json]

Run 'consul-leader run --help' or 'consul-leader leader --help' for details.
`

// guarantee is the one paragraph on what run promises, shared by --help
// and docs/runner.md.
const guarantee = `Guarantee: COMMAND runs only while this runner leads NAME. When the term
ends (leadership lost, or the store unreachable until the step-down
deadline), COMMAND's process group gets SIGTERM at once and SIGKILL after
--grace, so that it is dead before the store can elect another runner: the
term ends at its step-down deadline, TTL/10 before the store may expire the
session, and the grace must fit in half of that margin (at most TTL/20), or
run refuses it. COMMAND is held by a watchdog process that stops it on its
own when the runner is killed, or stalls (SIGSTOP, a long pause) and stops
confirming its term. Writes already on their way when COMMAND is killed can
still land late: pass $LEADER_TERM with each, and have the written system
refuse a term lower than the highest it has seen.
`

const runUsage = `Usage: consul-leader run --store URL --resource NAME [flags] -- COMMAND [ARGS...]

Campaigns for the leadership of NAME on the store at URL and runs COMMAND,
in a process group of its own, while it leads. COMMAND's environment has
LEADER_TERM (the term's fencing token, growing with every term),
LEADER_ID (this runner's ID) and LEADER_RESOURCE (NAME).

` + guarantee + `
Signals: SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 and SIGWINCH are forwarded to
COMMAND's process group. SIGTERM and SIGINT are forwarded as well, and stop
the runner: it waits for COMMAND (SIGKILL after --grace), gives the
leadership up and exits with COMMAND's exit code.

When COMMAND exits by itself, the runner gives the leadership up and exits
with its code; with --restart it keeps campaigning and runs COMMAND again
in its next term. What COMMAND leaves running in its process group is
killed when it exits.

Failover: another runner leads once this one gave the leadership up (at
once after a stop or an exit), or once the store expired its session: about
TTL after the last renewal on etcd, Redis and Consul with checkTTL, up to
2*TTL plus the lock-delay on Consul's plain sessions.

Exit codes: COMMAND's (128+N if signal N killed it) when it exited by itself
or the runner was stopped by SIGTERM/SIGINT; 0 when stopped while not
leading; 1 when the run failed; 2 for bad input (flags, URL, grace,
COMMAND not found).

URL: ` + urlForms + `
with parameters such as ttl, checkTTL (Consul) or lockDelay (Consul); see
the backends package. URL parameters must not repeat --ttl, --id or
--resource.

Flags:
`

const leaderUsage = `Usage: consul-leader leader --store URL --resource NAME [--watch] [--json]

Prints who leads NAME on the store at URL: "ID (term N)", or "no leader".
It never campaigns.

With --watch it follows the leadership with the store's blocking reads and
prints a line as soon as the leader or term changes (a release, a new
leader, a leader whose session expired), one per change, until SIGINT or
SIGTERM. Each blocking read waits about the URL parameter waitTime
(default 5s) and, when nothing changed, is followed by a plain read that
makes sure the store still answers. A read that fails is reported on stderr, once
until the store answers again (which is reported too), and retried after
100ms, doubled after each failure up to 5s; stdout carries only leadership
lines. --interval is deprecated and has no effect.

Exit codes: 0 a leader was printed (or --watch ended by a signal); 1 the
store could not be read; 2 bad input; 3 nobody leads.

Flags:
`
