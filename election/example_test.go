package election_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// Two candidates of one service campaign for the same resource; here on the
// in-memory store, but the code is the same on every store. When the leader
// releases, the other candidate takes over at once, with a higher term.
func Example() {
	ctx := context.Background()
	store := memory.NewStore()
	led := make(chan election.Leadership, 2)
	candidate := func(id string) *election.Elector {
		el, err := memory.New(store, election.Options{Resource: "billing-cron", ID: id})
		if err != nil {
			panic(err) // an *election.OptionError
		}
		err = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				led <- l
			}
			return nil // a notification: the term lasts until ctx ends
		})
		if err != nil {
			panic(err)
		}
		return el
	}

	a := candidate("node-a")
	defer a.Close(ctx)
	first := <-led
	fmt.Println(first.LeaderID, "leads")

	b := candidate("node-b")
	defer b.Close(ctx)
	if err := a.Release(ctx); err != nil {
		panic(err)
	}
	second := <-led
	fmt.Println(second.LeaderID, "leads")
	fmt.Println("higher term:", second.Term > first.Term)
	// Output:
	// node-a leads
	// node-b leads
	// higher term: true
}

// Validate names the field at fault and the rule it breaks; New returns the
// same error.
func ExampleOptions_Validate() {
	opts := election.Options{Resource: "billing-cron", TTL: 2 * time.Second, RenewInterval: 2 * time.Second}
	err := opts.Validate()
	fmt.Println(err)

	var oe *election.OptionError
	if errors.As(err, &oe) {
		fmt.Println("field:", oe.Field)
	}
	fmt.Println("invalid options:", errors.Is(err, election.ErrInvalidOptions))

	fmt.Println(election.Options{Resource: "billing cron"}.Validate())
	fmt.Println(election.Options{Resource: "billing-cron"}.Validate())
	// Output:
	// election: invalid option RenewInterval: must be less than TTL - StepDownMargin(TTL), so that a renewal can complete before the leader must step down at TTL - StepDownMargin(TTL) = 1.8s (got 2s)
	// field: RenewInterval
	// invalid options: true
	// election: invalid option Resource: may contain only letters, digits and . _ - : / (got "billing cron")
	// <nil>
}

// ledger stands for the system a leader writes to. It remembers the highest
// term it has seen and refuses writes of a lower one, so that a former
// leader that stalled past its term cannot write over its successor.
type ledger struct {
	mu      sync.Mutex
	term    uint64
	entries []string
}

var errStaleTerm = errors.New("ledger: refused, a newer term has written")

// Append writes entry for a leader of term. In a database this is a
// conditional update (... WHERE term <= ?) or a transaction that checks the
// stored term first.
func (lg *ledger) Append(term uint64, entry string) error {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	if term < lg.term {
		return errStaleTerm
	}
	lg.term = term
	lg.entries = append(lg.entries, entry)
	return nil
}

// A leader's handler does the leader's work until its context ends. Before
// every write it checks the context, so that nothing is written once the term
// is over, and it sends the term with the write, so that the written system
// can refuse a write that arrives late anyway (after a GC pause, a frozen
// VM): the fencing token.
func ExampleHandler() {
	ctx := context.Background()
	store := memory.NewStore()
	lg := &ledger{}
	terms := make(chan uint64, 2)

	handler := func(id string) election.Handler {
		return func(ctx context.Context, l election.Leadership) error {
			if !l.IsLeader {
				return nil
			}
			for _, invoice := range []string{"invoice 1", "invoice 2"} {
				if ctx.Err() != nil {
					return nil // the term ended: write nothing more
				}
				if err := lg.Append(l.Term, id+" bills "+invoice); err != nil {
					return err // a newer leader exists: give the term up
				}
			}
			terms <- l.Term
			<-ctx.Done() // lead until the term ends
			return nil
		}
	}
	start := func(id string) *election.Elector {
		el, err := memory.New(store, election.Options{Resource: "billing", ID: id})
		if err != nil {
			panic(err)
		}
		if err := el.Start(ctx, handler(id)); err != nil {
			panic(err)
		}
		return el
	}

	a := start("node-a")
	defer a.Close(ctx)
	oldTerm := <-terms
	b := start("node-b")
	defer b.Close(ctx)
	if err := a.Release(ctx); err != nil {
		panic(err)
	}
	<-terms

	// node-a's write of its old term, arriving after node-b has written.
	fmt.Println(lg.Append(oldTerm, "node-a bills invoice 3"))
	for _, e := range lg.entries {
		fmt.Println(e)
	}
	// Output:
	// ledger: refused, a newer term has written
	// node-a bills invoice 1
	// node-a bills invoice 2
	// node-b bills invoice 1
	// node-b bills invoice 2
}

// Leader reads who leads from the store, on any elector, started or not.
func ExampleElector_Leader() {
	ctx := context.Background()
	store := memory.NewStore()
	leading := make(chan struct{})
	a, err := memory.New(store, election.Options{Resource: "billing-cron", ID: "node-a", Value: []byte("10.0.0.5:8080")})
	if err != nil {
		panic(err)
	}
	defer a.Close(ctx)
	err = a.Start(ctx, func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			close(leading)
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	<-leading

	// An elector that does not campaign, say in a status page.
	observer, err := memory.New(store, election.Options{Resource: "billing-cron", ID: "status-page"})
	if err != nil {
		panic(err)
	}
	defer observer.Close(ctx)
	l, err := observer.Leader(ctx)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s leads at %s; the observer leads: %v\n", l.LeaderID, l.Value, l.IsLeader)
	// Output:
	// node-a leads at 10.0.0.5:8080; the observer leads: false
}

// Run campaigns until its context ends, and then closes the elector: it
// ends the term, waits for the handler and releases. It returns nil for a
// shutdown signalled by its context, so it fits an errgroup.Group. A
// service passes signal.NotifyContext's context; here the leader stops the
// service itself, to end the example.
func ExampleElector_Run() {
	el, err := memory.New(memory.NewStore(), election.Options{Resource: "billing-cron", ID: "node-a"})
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	err = el.Run(ctx, election.LeaderOnly(func(ctx context.Context, term uint64) error {
		fmt.Println("leading in term", term)
		stop() // a shutdown signal, say
		<-ctx.Done()
		fmt.Println("term over:", ctx.Err())
		return nil
	}))
	fmt.Println("Run returned", err)
	// Output:
	// leading in term 2
	// term over: context canceled
	// Run returned <nil>
}

// LeaderOnly adapts a function that does the leader's work: it is called
// when this elector leads, with the term's context and fencing token, and
// not for the notifications a follower gets (who leads, no leader, the
// store unreachable).
func ExampleLeaderOnly() {
	ctx := context.Background()
	store := memory.NewStore()
	leading := make(chan string, 10)
	candidate := func(id string) *election.Elector {
		el, err := memory.New(store, election.Options{Resource: "billing-cron", ID: id})
		if err != nil {
			panic(err)
		}
		err = el.Start(ctx, election.LeaderOnly(func(ctx context.Context, term uint64) error {
			leading <- fmt.Sprintf("%s leads in term %d", id, term)
			<-ctx.Done() // the leader's work, until the term ends
			return nil
		}))
		if err != nil {
			panic(err)
		}
		return el
	}

	a := candidate("node-a")
	defer a.Close(ctx)
	fmt.Println(<-leading)
	b := candidate("node-b") // follows node-a: its function is not called
	defer b.Close(ctx)
	if err := a.Release(ctx); err != nil {
		panic(err)
	}
	fmt.Println(<-leading)
	// Output:
	// node-a leads in term 2
	// node-b leads in term 4
}

// IsLeader answers without a store request or a lock, so code outside the
// handler can ask it as often as it runs: here a periodic job that only
// the leader runs. It turns false the moment the term ends.
func ExampleElector_IsLeader() {
	ctx := context.Background()
	el, err := memory.New(memory.NewStore(), election.Options{Resource: "billing-cron", ID: "node-a"})
	if err != nil {
		panic(err)
	}
	defer el.Close(ctx)
	fmt.Println("before Start:", el.IsLeader())

	led := make(chan struct{}, 1)
	err = el.Start(ctx, election.LeaderOnly(func(context.Context, uint64) error {
		select {
		case led <- struct{}{}:
		default:
		}
		return nil // a notification: the term lasts until its context ends
	}))
	if err != nil {
		panic(err)
	}
	<-led

	runJob := func() {
		if !el.IsLeader() {
			fmt.Println("not the leader: skipping the job")
			return
		}
		fmt.Println("running the job in term", el.State().Term)
	}
	runJob()
	if err := el.Release(ctx); err != nil {
		panic(err)
	}
	runJob()
	// Output:
	// before Start: false
	// running the job in term 2
	// not the leader: skipping the job
}
