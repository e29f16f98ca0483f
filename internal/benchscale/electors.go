package benchscale

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// Electors are the electors a recipe started, closed together by Stop.
type Electors struct {
	mu       sync.Mutex
	els      []*election.Elector
	stopping atomic.Bool
}

// StartLeader starts el, one of a Lead recipe's, with a handler that calls
// led at its first leadership, and lost when a term ends before Stop.
//
// The handler returns from its leader call at once, as a process that leads
// thousands of resources does (the term lasts until its context ends
// either way), and learns of a term's end from the notification that
// follows it. With SCALE_BLOCKING set, it blocks in its leader call until
// the term ends instead, and so keeps a goroutine for each resource led.
func (e *Electors) StartLeader(el *election.Elector, led, lost func()) error {
	e.add(el)
	var once sync.Once
	var leading atomic.Bool
	if os.Getenv(EnvBlocking) != "" {
		return el.Start(context.Background(), func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				once.Do(led)
				<-ctx.Done()
				if !e.stopping.Load() {
					lost()
				}
			}
			return nil
		})
	}
	return el.Start(context.Background(), func(_ context.Context, l election.Leadership) error {
		switch {
		case l.IsLeader:
			once.Do(led)
			leading.Store(true)
		case leading.Swap(false) && !e.stopping.Load():
			lost()
		}
		return nil
	})
}

// StartCandidate starts el, candidate i of a Handovers pool, with a
// handler that sends each of its leaderships to leaders and holds it until
// its term ends.
func (e *Electors) StartCandidate(el *election.Elector, i int, leaders chan<- Led) error {
	e.add(el)
	return el.Start(context.Background(), func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			leaders <- Led{ID: i, At: time.Now()}
			<-ctx.Done()
		}
		return nil
	})
}

func (e *Electors) add(el *election.Elector) {
	e.mu.Lock()
	e.els = append(e.els, el)
	e.mu.Unlock()
}

// Stop closes ss, when not nil, then every elector, 64 at a time, then
// calls each of closers (the backends that electors made by election.New
// leave open). It reports failures to tb.
func (e *Electors) Stop(tb testing.TB, ss *election.SharedSession, closers ...func() error) {
	e.stopping.Store(true)
	if ss != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := ss.Close(ctx); err != nil {
			tb.Errorf("close shared session: %v", err)
		}
	}
	e.mu.Lock()
	els := e.els
	e.mu.Unlock()
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, el := range els {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := el.Close(ctx); err != nil && failed.Add(1) == 1 {
				tb.Errorf("close: %v", err)
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		tb.Errorf("%d of %d electors failed to close", n, len(els))
	}
	for _, c := range closers {
		if err := c(); err != nil {
			tb.Errorf("close backend: %v", err)
		}
	}
}
