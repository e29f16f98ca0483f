//go:build go1.25

package backends_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// A migrating process on a shared session holds a session on each store:
// its electors lead on both, and the loss of either store's session ends
// every term, which then start again on a new pair.
func TestMigrationSharedSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		from, to := memory.NewStore(), memory.NewStore()
		b, err := backends.Migration(from.Connect("p"), to.Connect("p"))
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := b.(election.SessionSharer); !ok {
			t.Fatal("a migration between two stores that share sessions does not share them")
		}
		s, err := election.NewSharedSession(b, election.SessionOptions{TTL: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		type event struct {
			l     election.Leadership
			ended bool
		}
		events := map[string]chan event{}
		var els []*election.Elector
		for _, r := range []string{"r1", "r2"} {
			ch := make(chan event, 16)
			events[r] = ch
			el, err := election.New(b, election.Options{Resource: r, ID: "p", Session: s})
			if err != nil {
				t.Fatal(err)
			}
			_ = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
				if l.IsLeader {
					ch <- event{l: l}
					<-ctx.Done()
					ch <- event{ended: true}
				}
				return nil
			})
			els = append(els, el)
		}
		// next waits for r's next event; a test that fails must still close
		// the electors, or the bubble never ends.
		next := func(r string) (event, bool) {
			select {
			case e := <-events[r]:
				return e, true
			case <-time.After(time.Minute):
				t.Errorf("%s: no event within a minute", r)
				return event{}, false
			}
		}
		func() {
			first := map[string]election.Leadership{}
			fromTerms := map[string]uint64{}
			for r := range events {
				e, ok := next(r)
				if !ok {
					return
				}
				l := e.l
				first[r] = l
				id := s.Info().ID
				if l.Session.ID != id || !strings.Contains(id, "+") {
					t.Errorf("%s leads on session %q; want the pair session %q", r, l.Session.ID, id)
				}
				fid, fterm := from.Leader(r)
				tid, tterm := to.Leader(r)
				if fid != "p" || tid != "p" || tterm != l.Term {
					t.Errorf("%s: from led by %q, to by %q at term %d; want p on both, term %d on to", r, fid, tid, tterm, l.Term)
				}
				fromTerms[r] = fterm
			}
			// The lease on one store alone is lost: to's, then from's.
			for _, lost := range []struct {
				name  string
				store *memory.Store
			}{{"to", to}, {"from", from}} {
				if !lost.store.Expire("r1") {
					t.Errorf("%s has no session leading r1", lost.name)
					return
				}
				for r := range events {
					if e, ok := next(r); !ok || !e.ended {
						t.Errorf("%s: no end of the term lost with %s's session", r, lost.name)
						return
					}
					e, ok := next(r)
					if !ok {
						return
					}
					if e.ended || e.l.Term <= first[r].Term || e.l.Session.ID == first[r].Session.ID {
						t.Errorf("%s: after the loss of %s's session, term %d on %q; want a new term above %d on a new session",
							r, lost.name, e.l.Term, e.l.Session.ID, first[r].Term)
					}
					fid, fterm := from.Leader(r)
					if fid != "p" || fterm <= fromTerms[r] {
						t.Errorf("%s: from led by %q at term %d, want p at a term above %d: the lease on from outlived the pair", r, fid, fterm, fromTerms[r])
					}
					first[r], fromTerms[r] = e.l, fterm
				}
			}
		}()
		for _, el := range els {
			if err := el.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		for _, st := range []*memory.Store{from, to} {
			if id, _ := st.Leader("r2"); id != "" {
				t.Errorf("after Close, r2 still led by %q", id)
			}
		}
	})
}

// A migration shares sessions only when both of its stores do.
func TestMigrationSharesOnlyWhenBothDo(t *testing.T) {
	plain := struct {
		election.Backend
		election.TermFloorRaiser
	}{memory.NewStore().Connect("p"), memory.NewStore().Connect("p")}
	b, err := backends.Migration(memory.NewStore().Connect("p"), plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := b.(election.SessionSharer); ok {
		t.Error("a migration to a store without shared sessions claims to share them")
	}
}
