//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os/exec"
	"strings"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

const urlForms = backends.URLForms

// runConfig is what run was asked to do.
type runConfig struct {
	store    string
	opts     election.Options // Resource, ID and TTL from the flags
	budget   budget
	restart  bool
	logLevel slog.Level
	command  []string
}

// leaderConfig is what leader was asked to do.
type leaderConfig struct {
	store    string
	opts     election.Options
	watch    bool
	json     bool
	logLevel slog.Level
	// intervalGiven reports the deprecated --interval, which has no effect.
	intervalGiven bool
}

// storeFlags are the flags run and leader share.
type storeFlags struct {
	store, resource, id, logLevel string
	ttl                           time.Duration
}

func (s *storeFlags) register(fs *flag.FlagSet, withTTL bool) {
	fs.StringVar(&s.store, "store", "", "the store's `URL` (required), for example consul://127.0.0.1:8500?checkTTL=5s")
	fs.StringVar(&s.resource, "resource", "", "the `NAME` of what is led (required): letters, digits and . _ - : /")
	fs.StringVar(&s.logLevel, "log-level", "info", "the runner's log `level` on stderr: debug, info, warn or error")
	if withTTL {
		fs.StringVar(&s.id, "id", "", "this runner's `ID`, published to the others (default <hostname>-<pid>-<random>)")
		fs.DurationVar(&s.ttl, "ttl", 0, "the session `TTL` (default 15s, or Consul's checkTTL); a runner that dies is replaced about a TTL later")
	}
}

// usageError is bad input: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// options checks the flags and the URL, and returns the election options
// with the defaults the URL implies: what backends.Open will use.
func (s *storeFlags) options(fs *flag.FlagSet) (election.Options, slog.Level, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.logLevel)); err != nil {
		return election.Options{}, 0, usagef("--log-level: %q is not debug, info, warn or error", s.logLevel)
	}
	if s.store == "" {
		return election.Options{}, 0, usagef("--store is required: %s", urlForms)
	}
	u, err := url.Parse(s.store)
	if err != nil {
		return election.Options{}, 0, usagef("--store: %v", err)
	}
	q := u.Query()
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, p := range []string{"resource", "id", "ttl"} {
		if set[p] && q.Has(p) {
			return election.Options{}, 0, usagef("--%s and the URL parameter %s are both given; give one", p, p)
		}
	}
	if s.resource == "" && !q.Has("resource") {
		return election.Options{}, 0, usagef("--resource is required")
	}
	opts := election.Options{Resource: s.resource, ID: s.id, TTL: s.ttl}
	if set["ttl"] && s.ttl <= 0 {
		return election.Options{}, 0, usagef("--ttl must be positive, got %v", s.ttl)
	}
	eff, _, err := backends.ParseOptions(q, opts)
	if err != nil {
		return election.Options{}, 0, usagef("--store: %v", err)
	}
	if sc := strings.ToLower(u.Scheme); sc == consul.Scheme || sc == consul.SchemeTLS {
		eff = consul.URLDefaults(u, eff)
	}
	if err := eff.Validate(); err != nil {
		return election.Options{}, 0, usagef("--store/--resource/--id/--ttl: %v", err)
	}
	return eff.WithDefaults(), level, nil
}

// parseFlags parses args with fs; on --help it prints usage to stdout.
func parseFlags(fs *flag.FlagSet, args []string, usage string, stdout io.Writer) error {
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fs.SetOutput(stdout)
		fmt.Fprint(stdout, usage)
		fs.PrintDefaults()
		return err
	}
	if err != nil {
		return &usageError{err.Error()}
	}
	return nil
}

// fail prints err for the subcommand and returns its exit code.
func fail(stderr io.Writer, sub string, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "consul-leader %s: %v\nRun 'consul-leader %s --help' for usage.\n", sub, err, sub)
	var ue *usageError
	if errors.As(err, &ue) {
		return exitUsage
	}
	return exitFailure
}

// parseRun parses run's arguments. ok is false when the run must not go
// on, with code its exit code.
func parseRun(args []string, stdout, stderr io.Writer) (cfg runConfig, code int, ok bool) {
	cfg, err := parseRunArgs(args, stdout)
	if err != nil {
		return cfg, fail(stderr, "run", err), false
	}
	return cfg, 0, true
}

func parseRunArgs(args []string, stdout io.Writer) (runConfig, error) {
	var cfg runConfig
	var s storeFlags
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	s.register(fs, true)
	var grace time.Duration
	fs.DurationVar(&grace, "grace", 0, "time from SIGTERM to SIGKILL when the term ends (default TTL/40; at most TTL/20, so that the command is dead before anyone else can lead)")
	fs.BoolVar(&cfg.restart, "restart", false, "run COMMAND again in the next term when it exits by itself, instead of exiting")
	if err := parseFlags(fs, args, runUsage, stdout); err != nil {
		return cfg, err
	}
	opts, level, err := s.options(fs)
	if err != nil {
		return cfg, err
	}
	graceSet := false
	fs.Visit(func(f *flag.Flag) { graceSet = graceSet || f.Name == "grace" })
	cfg.budget, err = newBudget(opts.TTL, grace, graceSet)
	if err != nil {
		return cfg, &usageError{err.Error()}
	}
	cfg.command = fs.Args()
	if len(cfg.command) == 0 {
		return cfg, usagef("no COMMAND: give it after the flags, as in -- COMMAND ARGS...")
	}
	if _, err := exec.LookPath(cfg.command[0]); err != nil {
		return cfg, usagef("COMMAND %q: %v", cfg.command[0], err)
	}
	cfg.store, cfg.opts, cfg.logLevel = s.store, election.Options{Resource: s.resource, ID: s.id, TTL: s.ttl}, level
	return cfg, nil
}

// parseLeader parses leader's arguments, as parseRun does.
func parseLeader(args []string, stdout, stderr io.Writer) (cfg leaderConfig, code int, ok bool) {
	cfg, err := parseLeaderArgs(args, stdout)
	if err != nil {
		return cfg, fail(stderr, "leader", err), false
	}
	return cfg, 0, true
}

func parseLeaderArgs(args []string, stdout io.Writer) (leaderConfig, error) {
	var cfg leaderConfig
	var s storeFlags
	fs := flag.NewFlagSet("leader", flag.ContinueOnError)
	s.register(fs, false)
	fs.BoolVar(&cfg.watch, "watch", false, "print a line at every change of the leadership, until SIGINT or SIGTERM")
	var interval time.Duration
	fs.DurationVar(&interval, "interval", 0, "deprecated, no effect: --watch waits on the store's blocking reads; the URL parameter waitTime bounds one (default 5s)")
	fs.BoolVar(&cfg.json, "json", false, `print JSON lines, {"leader":ID,"term":N}, with ID "" when nobody leads`)
	if err := parseFlags(fs, args, leaderUsage, stdout); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, usagef("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) { cfg.intervalGiven = cfg.intervalGiven || f.Name == "interval" })
	if cfg.intervalGiven && interval <= 0 {
		return cfg, usagef("--interval must be positive, got %v (it is deprecated and has no effect: leave it out)", interval)
	}
	_, level, err := s.options(fs)
	if err != nil {
		return cfg, err
	}
	cfg.store, cfg.opts, cfg.logLevel = s.store, election.Options{Resource: s.resource}, level
	return cfg, nil
}
