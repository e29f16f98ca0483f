// Command counter is the distributed counter of the original consul-leader,
// on any store: several candidates each run a counter, only the leader
// increments it, once a second, and prints it with its term; followers print
// who leads. Leadership moves when the leader releases, and when it dies.
//
//	go run ./examples/counter                                  # three candidates on the in-memory store
//	go run ./examples/counter -backend consul://127.0.0.1:8500 # the same on Consul
//	go run ./examples/counter -backend etcd://127.0.0.1:2379 -id node-1   # one candidate per process
//
// With -id the program runs a single candidate until Ctrl-C (which releases);
// start several in different terminals and kill one with kill -9 to see a
// leader die. Without -id it plays a script with several candidates in one
// process, and exits by itself.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/election"
)

func main() {
	var (
		backendURL = flag.String("backend", "memory://counter", "store URL: memory://, consul://, etcd://, redis://")
		resource   = flag.String("resource", "counter", "the resource to lead")
		ttl        = flag.Duration("ttl", 0, "session TTL (default: the URL's ttl, else 2s on memory, else 15s)")
		id         = flag.String("id", "", "run one candidate with this ID until interrupted")
		n          = flag.Int("candidates", 3, "candidates in the scripted demo")
		verbose    = flag.Bool("v", false, "log the electors' decisions")
	)
	flag.Parse()
	if *ttl == 0 && strings.HasPrefix(*backendURL, "memory:") {
		*ttl = 2 * time.Second
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	d := &demo{opener: &backends.Opener{}, url: *backendURL, sink: &fencedCounter{}, step: 3500 * time.Millisecond, base: election.Options{Resource: *resource, TTL: *ttl, Logger: logger}}
	var err error
	if *id != "" {
		err = d.single(ctx, *id)
	} else {
		err = d.script(ctx, *n)
	}
	// The Opener's clients, once every elector closed.
	err = errors.Join(err, d.opener.Close(context.Background()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "counter:", err)
		os.Exit(1)
	}
	fmt.Println("all electors closed")
}

type demo struct {
	opener *backends.Opener
	url    string
	base   election.Options
	sink   *fencedCounter
	step   time.Duration // between the script's steps
}

// candidate is one process of the service: an elector and its counter.
type candidate struct {
	id    string
	el    *election.Elector
	count int
}

func (d *demo) start(ctx context.Context, id string) (*candidate, error) {
	opts := d.base
	opts.ID = id
	opts.Value = []byte("http://" + id + ".internal:8080")
	el, err := d.opener.Open(ctx, d.url, opts)
	if err != nil {
		return nil, err
	}
	c := &candidate{id: id, el: el}
	err = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
		switch {
		case l.Err != nil:
			fmt.Printf("%-7s cannot campaign: %v\n", id, l.Err)
		case l.IsLeader:
			fmt.Printf("%-7s ** became leader, term %d\n", id, l.Term)
			return c.lead(ctx, l.Term, d.sink)
		case l.LeaderID == "":
			fmt.Printf("%-7s no leader right now\n", id)
		default:
			fmt.Printf("%-7s follows %s (term %d, at %s)\n", id, l.LeaderID, l.Term, l.Value)
		}
		return nil
	})
	if err != nil {
		_ = el.Close(ctx)
		return nil, err
	}
	return c, nil
}

// lead is the leader's work: it runs until the term's context ends.
func (c *candidate) lead(ctx context.Context, term uint64, sink *fencedCounter) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Printf("%-7s stops leading (term %d): %v\n", c.id, term, context.Cause(ctx))
			return nil
		case <-tick.C:
			c.count++
			total, err := sink.Add(term)
			if err != nil {
				fmt.Printf("%-7s write refused: %v\n", c.id, err)
				continue
			}
			fmt.Printf("%-7s term %d: my count %d, shared total %d\n", c.id, term, c.count, total)
		}
	}
}

// script plays release and death with n candidates in this process.
func (d *demo) script(ctx context.Context, n int) error {
	if n < 2 {
		return fmt.Errorf("-candidates must be at least 2, got %d", n)
	}
	var cs []*candidate
	defer func() {
		// Followers first, the leader last, so that stopping hands nothing
		// over.
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		leader := d.leader(cctx, cs)
		for _, c := range cs {
			if c != leader {
				_ = c.el.Close(cctx)
			}
		}
		if leader != nil {
			_ = leader.el.Close(cctx)
		}
	}()
	for i := 1; i <= n; i++ {
		c, err := d.start(ctx, fmt.Sprintf("node-%d", i))
		if err != nil {
			return err
		}
		cs = append(cs, c)
	}
	steps := []struct {
		say string
		act func(leader *candidate)
	}{
		{"the leader releases its leadership", func(l *candidate) { _ = l.el.Release(ctx) }},
		{"the leader dies (its connection to the store is cut; it steps down by itself before its TTL runs out)", func(l *candidate) { d.kill(l) }},
		{"time is up", nil},
	}
	for _, step := range steps {
		if !sleep(ctx, d.step) {
			return nil
		}
		leader := d.leader(ctx, cs)
		fmt.Printf("-------- %s\n", step.say)
		if step.act != nil && leader != nil {
			step.act(leader)
			if !d.waitNewLeader(ctx, cs, leader) {
				return nil
			}
		}
	}
	return nil
}

// kill cuts a candidate off the store, as its death would. Only the memory
// store can be cut from inside the process; on a real store, run single
// candidates and kill one.
func (d *demo) kill(c *candidate) {
	if !strings.HasPrefix(d.url, "memory:") {
		fmt.Println("         (a death can only be simulated on memory://; releasing instead)")
		_ = c.el.Release(context.Background())
		return
	}
	name := strings.TrimPrefix(strings.SplitN(d.url, "?", 2)[0], "memory://")
	d.opener.MemoryStore(name).Cut(c.id)
}

// leader asks the store who leads, through the first candidate that can
// reach it.
func (d *demo) leader(ctx context.Context, cs []*candidate) *candidate {
	for _, asker := range cs {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		l, err := asker.el.Leader(rctx)
		cancel()
		if err != nil {
			continue
		}
		for _, c := range cs {
			if c.id == l.LeaderID {
				return c
			}
		}
		return nil
	}
	return nil
}

func (d *demo) waitNewLeader(ctx context.Context, cs []*candidate, old *candidate) bool {
	for {
		if l := d.leader(ctx, cs); l != nil && l != old {
			return true
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return false
		}
	}
}

// single runs one candidate until ctx ends.
func (d *demo) single(ctx context.Context, id string) error {
	c, err := d.start(ctx, id)
	if err != nil {
		return err
	}
	<-ctx.Done()
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.el.Close(cctx)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// fencedCounter is the shared resource the leaders write to. It refuses a
// write whose term is lower than the highest it has seen: a stalled former
// leader's late writes are refused.
type fencedCounter struct {
	mu      sync.Mutex
	maxTerm uint64
	total   int
}

// Add increments the counter for a leader of term.
func (f *fencedCounter) Add(term uint64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if term < f.maxTerm {
		return f.total, fmt.Errorf("term %d is older than term %d", term, f.maxTerm)
	}
	f.maxTerm = term
	f.total++
	return f.total, nil
}
