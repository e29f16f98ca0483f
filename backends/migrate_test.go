//go:build go1.25

package backends_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/conformance"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// pairStore runs the conformance suite on a migrating backend over two
// memory stores.
type pairStore struct{ from, to *memory.Store }

type pairLink struct {
	stores [2]*memory.Store
	name   string
}

func (l pairLink) Cut() {
	for _, s := range l.stores {
		s.Cut(l.name)
	}
}

func (l pairLink) Heal() {
	for _, s := range l.stores {
		s.Heal(l.name)
	}
}

func (p pairStore) NewCandidate(t testing.TB, opts election.Options) (*election.Elector, conformance.Link, error) {
	b, err := backends.Migration(p.from.Connect(opts.ID), p.to.Connect(opts.ID))
	if err != nil {
		t.Fatal(err)
	}
	el, err := election.New(b, opts)
	return el, pairLink{[2]*memory.Store{p.from, p.to}, opts.ID}, err
}

func (p pairStore) Remove(t testing.TB, resource string, what conformance.Removal) {
	if what == conformance.RemoveRecord {
		p.to.DeleteRecord(resource)
	} else {
		p.to.Expire(resource)
	}
}

func TestMigrationConformance(t *testing.T) {
	conformance.Run(t, conformance.Config{
		Name:  "migrate(memory→memory)",
		Open:  func(t *testing.T) conformance.Store { return pairStore{memory.NewStore(), memory.NewStore()} },
		TTL:   15 * time.Second,
		Slack: 100 * time.Millisecond,
		Wrap:  synctest.Test,
	})
}

func TestMigrationNeedsTermFloors(t *testing.T) {
	_, err := backends.Migration(memory.NewStore().Connect("a"), noFloor{memory.NewStore().Connect("a")})
	if err == nil {
		t.Fatal("a backend without term floors was accepted")
	}
}

type noFloor struct{ election.Backend }

// fence is the downstream resource: it refuses writes with a term lower
// than the highest it saw, and counts leaders acting at once.
type fence struct {
	t       *testing.T
	mu      sync.Mutex
	maxTerm uint64
	acting  map[string]uint64
	writes  int
}

func (f *fence) start(id string, term uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for other, ot := range f.acting {
		f.t.Errorf("two leaders: %s (term %d) started while %s (term %d) acts", id, term, other, ot)
	}
	if term <= f.maxTerm {
		f.t.Errorf("term went backwards: %s leads with %d after %d", id, term, f.maxTerm)
	}
	f.maxTerm = term
	f.acting[id] = term
	f.writes++
}

func (f *fence) stop(id string) {
	f.mu.Lock()
	delete(f.acting, id)
	f.mu.Unlock()
}

func (f *fence) leading() (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for id := range f.acting {
		return id, true
	}
	return "", false
}

// procedureEnv is where a migration procedure runs: how to start a process
// of a mode ("old", "both", "new") and how to cut one off its stores for good.
type procedureEnv struct {
	ttl   time.Duration
	spawn func(t *testing.T, mode, id string) *election.Elector
	cut   func(id string)
	heal  func(id string)
}

// TestMigrationProcedure moves a deployment of four processes from one store
// to another in the three documented steps, with releases and crashes in
// between, and checks continuously that there is never more than one
// leader and that the fenced resource sees terms only grow.
func TestMigrationProcedure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		oldStore, newStore := memory.NewStore(), memory.NewStore()
		runProcedure(t, procedureEnv{
			ttl: 10 * time.Second,
			spawn: func(t *testing.T, mode, id string) *election.Elector {
				var b election.Backend
				switch mode {
				case "old":
					b = oldStore.Connect(id)
				case "new":
					b = newStore.Connect(id)
				default:
					var err error
					if b, err = backends.Migration(oldStore.Connect(id), newStore.Connect(id)); err != nil {
						t.Fatal(err)
					}
				}
				el, err := election.New(b, election.Options{Resource: "jobs", ID: id, TTL: 10 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				return el
			},
			cut:  func(id string) { oldStore.Cut(id); newStore.Cut(id) },
			heal: func(id string) { oldStore.Heal(id); newStore.Heal(id) },
		})
	})
}

func runProcedure(t *testing.T, env procedureEnv) {
	ctx := context.Background()
	f := &fence{t: t, acting: map[string]uint64{}}
	rng := rand.New(rand.NewPCG(1, 2))
	type proc struct {
		id string
		el *election.Elector
	}
	var procs, crashed []proc
	gen := 0
	spawn := func(mode string) proc {
		gen++
		id := fmt.Sprintf("%s-%d", mode, gen)
		el := env.spawn(t, mode, id)
		_ = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				f.start(id, l.Term)
				<-ctx.Done()
				f.stop(id)
			}
			return nil
		})
		return proc{id, el}
	}
	defer func() {
		for _, p := range procs {
			_ = p.el.Close(ctx)
		}
		for _, p := range crashed {
			env.heal(p.id)
			_ = p.el.Close(ctx)
		}
	}()
	waitLeader := func(step string) {
		t.Helper()
		deadline := time.Now().Add(3 * env.ttl)
		for time.Now().Before(deadline) {
			if _, ok := f.leading(); ok {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("%s: no leader within 3 TTL", step)
	}
	// roll replaces every process, one at a time, by one of mode: a
	// graceful stop or a crash (cut off for good); then the leader releases.
	roll := func(mode string) {
		for i := range procs {
			if rng.IntN(3) == 1 {
				env.cut(procs[i].id)
				crashed = append(crashed, procs[i])
			} else {
				_ = procs[i].el.Close(ctx)
			}
			procs[i] = spawn(mode)
			waitLeader(mode + " rollout")
			if id, ok := f.leading(); ok {
				for _, p := range procs {
					if p.id == id {
						_ = p.el.Release(ctx)
					}
				}
			}
			time.Sleep(time.Duration(rng.IntN(int(env.ttl/3/time.Millisecond))) * time.Millisecond)
		}
	}
	for range 4 {
		procs = append(procs, spawn("old"))
	}
	waitLeader("step 1")
	roll("both")
	waitLeader("step 2")
	// Step 3 starts once no process runs on the old store alone, and a TTL
	// has passed since the last one stopped, so that one that was cut off
	// has stepped down: processes on the new store alone share no store
	// with it.
	time.Sleep(env.ttl)
	roll("new")
	waitLeader("step 3")
	if f.writes < 5 {
		t.Errorf("only %d terms over the migration; the test did not move leadership enough", f.writes)
	}
	t.Logf("%d terms, last term %d", f.writes, f.maxTerm)
}
