// Command migrate moves a running counter service from one store to another
// with no downtime and never two leaders, in the three documented steps:
//
//  1. every process campaigns on the old store;
//  2. the processes are replaced, one by one, by processes on both stores
//     (migrate://?from=OLD&to=NEW);
//  3. once none runs on the old store alone, they are replaced by processes
//     on the new store alone.
//
// The leader increments a fenced counter once a second and prints its term;
// the terms keep growing across the move.
//
//	go run ./examples/migrate                                   # memory://old to memory://new
//	go run ./examples/migrate -from etcd://127.0.0.1:2379 -to consul://127.0.0.1:8500
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/election"
)

func main() {
	from := flag.String("from", "memory://old", "the store the service runs on now")
	to := flag.String("to", "memory://new", "the store it moves to")
	ttl := flag.Duration("ttl", 0, "session TTL (default: 2s when both stores are memory://, else 15s)")
	flag.Parse()
	if *ttl == 0 && isMemory(*from) && isMemory(*to) {
		*ttl = 2 * time.Second
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	m := &mover{opener: &backends.Opener{}, opts: election.Options{Resource: "counter", TTL: *ttl}, step: 3 * time.Second}
	err := m.run(ctx, *from, *to, 3)
	// The Opener's clients, once every elector closed.
	err = errors.Join(err, m.opener.Close(context.Background()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
}

func isMemory(u string) bool { p, err := url.Parse(u); return err == nil && p.Scheme == "memory" }

type mover struct {
	opener *backends.Opener
	opts   election.Options
	step   time.Duration

	mu      sync.Mutex
	maxTerm uint64
	total   int
	gen     int
}

type process struct {
	id string
	el *election.Elector
}

func (m *mover) run(ctx context.Context, from, to string, n int) error {
	both := "migrate://?" + url.Values{"from": {from}, "to": {to}}.Encode()
	var procs []process
	defer func() {
		for _, p := range procs {
			_ = p.el.Close(context.Background())
		}
	}()
	for range n {
		p, err := m.spawn(ctx, "old", from)
		if err != nil {
			return err
		}
		procs = append(procs, p)
	}
	for _, step := range []struct{ name, url string }{{"both", both}, {"new", to}} {
		fmt.Printf("======== rolling out processes on %s\n", map[string]string{"both": "both stores", "new": "the new store alone"}[step.name])
		for i := range procs {
			if !sleep(ctx, m.step) {
				return nil
			}
			fmt.Printf("-------- replacing %s\n", procs[i].id)
			_ = procs[i].el.Close(ctx)
			p, err := m.spawn(ctx, step.name, step.url)
			if err != nil {
				return err
			}
			procs[i] = p
		}
	}
	sleep(ctx, m.step)
	m.mu.Lock()
	fmt.Printf("======== moved: %d increments, last term %d\n", m.total, m.maxTerm)
	m.mu.Unlock()
	return nil
}

func (m *mover) spawn(ctx context.Context, kind, rawURL string) (process, error) {
	m.mu.Lock()
	m.gen++
	id := fmt.Sprintf("%s-%d", kind, m.gen)
	m.mu.Unlock()
	opts := m.opts
	opts.ID = id
	el, err := m.opener.Open(ctx, rawURL, opts)
	if err != nil {
		return process{}, err
	}
	err = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
		if !l.IsLeader {
			return nil
		}
		fmt.Printf("%-7s ** leads, term %d (%s)\n", id, l.Term, l.Session.Backend)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
				if total, err := m.add(l.Term); err != nil {
					fmt.Printf("%-7s write refused: %v\n", id, err)
				} else {
					fmt.Printf("%-7s term %d: total %d\n", id, l.Term, total)
				}
			}
		}
	})
	return process{id, el}, err
}

// add is the fenced counter: a write with a term lower than the highest seen
// is refused.
func (m *mover) add(term uint64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if term < m.maxTerm {
		return m.total, fmt.Errorf("term %d is older than term %d", term, m.maxTerm)
	}
	m.maxTerm = term
	m.total++
	return m.total, nil
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
