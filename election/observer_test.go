//go:build go1.25

package election_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

var quiet = slog.New(slog.DiscardHandler)

// events records every event of an Observer, with the time it came.
type events struct {
	mu        sync.Mutex
	started   []election.TermStart
	ended     []election.TermEnd
	endedAt   []time.Time
	renewals  []election.Renewal
	failures  []election.StoreFailure
	recovered []election.StoreRecovery
	overruns  []election.HandlerOverrun
	stops     []election.Stop
	order     []string // the kinds of events, in order
}

func (r *events) observer() *election.Observer {
	return &election.Observer{
		TermStarted: func(e election.TermStart) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.started = append(r.started, e)
			r.order = append(r.order, "start")
		},
		TermEnded: func(e election.TermEnd) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.ended = append(r.ended, e)
			r.endedAt = append(r.endedAt, time.Now())
			r.order = append(r.order, "end")
		},
		Renewed: func(e election.Renewal) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.renewals = append(r.renewals, e)
		},
		StoreFailed: func(e election.StoreFailure) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.failures = append(r.failures, e)
		},
		StoreRecovered: func(e election.StoreRecovery) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.recovered = append(r.recovered, e)
		},
		HandlerOverran: func(e election.HandlerOverrun) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.overruns = append(r.overruns, e)
			r.order = append(r.order, fmt.Sprintf("overrun returned=%v", e.Returned))
		},
		Stopped: func(e election.Stop) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.stops = append(r.stops, e)
			r.order = append(r.order, "stop")
		},
	}
}

// lastEnd returns the last TermEnd and when it came; ok false if none.
func (r *events) lastEnd() (election.TermEnd, time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ended) == 0 {
		return election.TermEnd{}, time.Time{}, false
	}
	return r.ended[len(r.ended)-1], r.endedAt[len(r.endedAt)-1], true
}

// lostRenewals wraps a memory connection: once lose is set, every renewal
// of its sessions fails with ErrSessionLost.
type lostRenewals struct {
	*memory.Conn
	mu   sync.Mutex
	lose bool
}

func (b *lostRenewals) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	s, err := b.Conn.NewSession(ctx, p)
	if err != nil {
		return nil, err
	}
	return &lostRenewalSession{Session: s, b: b}, nil
}

type lostRenewalSession struct {
	election.Session
	b *lostRenewals
}

func (s *lostRenewalSession) Renew(ctx context.Context) error {
	s.b.mu.Lock()
	lose := s.b.lose
	s.b.mu.Unlock()
	if lose {
		return fmt.Errorf("memory test: %w", election.ErrSessionLost)
	}
	return s.Session.Renew(ctx)
}

// TestTermEndedCauses: each way a term ends is reported once, by
// TermEnded, with its cause, after a TermStarted of the same term.
func TestTermEndedCauses(t *testing.T) {
	const ttl = 10 * time.Second
	cases := []struct {
		name    string
		handler func(ctx context.Context) error
		end     func(t *testing.T, el *election.Elector, store *memory.Store, b *lostRenewals)
		want    election.EndCause
	}{
		{"released", nil, func(t *testing.T, el *election.Elector, _ *memory.Store, _ *lostRenewals) {
			if err := el.Release(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, election.CauseReleased},
		{"record deleted", nil, func(t *testing.T, _ *election.Elector, store *memory.Store, _ *lostRenewals) {
			store.DeleteRecord("r")
		}, election.CauseLost},
		{"session lost", nil, func(t *testing.T, _ *election.Elector, _ *memory.Store, b *lostRenewals) {
			b.mu.Lock()
			b.lose = true
			b.mu.Unlock()
		}, election.CauseSessionLost},
		{"store unreachable", nil, func(t *testing.T, _ *election.Elector, store *memory.Store, _ *lostRenewals) {
			store.Cut("a")
			t.Cleanup(func() { store.Heal("a") })
		}, election.CauseStoreUnreachable},
		{"handler error", func(ctx context.Context) error {
			time.Sleep(time.Second)
			return errors.New("boom")
		}, nil, election.CauseHandlerError},
		{"handler panic", func(ctx context.Context) error {
			time.Sleep(time.Second)
			panic("boom")
		}, nil, election.CauseHandlerPanic},
		{"closed", nil, func(t *testing.T, el *election.Elector, _ *memory.Store, _ *lostRenewals) {
			if err := el.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, election.CauseClosed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := memory.NewStore()
				b := &lostRenewals{Conn: store.Connect("a")}
				rec := &events{}
				el, err := election.New(b, election.Options{Resource: "r", ID: "a", TTL: ttl, Observers: []*election.Observer{rec.observer()}, Logger: quiet})
				if err != nil {
					t.Fatal(err)
				}
				h := c.handler
				if h == nil {
					h = func(ctx context.Context) error { <-ctx.Done(); return nil }
				}
				if err := el.Start(context.Background(), election.LeaderOnly(func(ctx context.Context, _ uint64) error { return h(ctx) })); err != nil {
					t.Fatal(err)
				}
				defer func() { _ = el.Close(context.Background()) }()
				synctest.Wait()
				if !el.IsLeader() {
					t.Fatal("not leading")
				}
				time.Sleep(time.Second)
				if c.end != nil {
					c.end(t, el, store, b)
				}
				time.Sleep(ttl)
				synctest.Wait()
				rec.mu.Lock()
				stops := len(rec.stops)
				rec.mu.Unlock()
				if stops != 0 && c.want != election.CauseClosed {
					t.Errorf("Stopped before Close")
				}
				if err := el.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
				rec.mu.Lock()
				defer rec.mu.Unlock()
				if len(rec.stops) != 1 || rec.order[len(rec.order)-1] != "stop" || rec.stops[0].Source != (election.Source{Resource: "r", ID: "a", Backend: memory.BackendName}) {
					t.Errorf("stops %+v, events %v: want one Stopped naming the elector, last", rec.stops, rec.order)
				}
				if len(rec.ended) == 0 {
					t.Fatalf("no TermEnded; events %v", rec.order)
				}
				if rec.order[0] != "start" || rec.order[1] != "end" {
					t.Errorf("events %v, want start then end", rec.order)
				}
				s, e := rec.started[0], rec.ended[0]
				if e.Cause != c.want {
					t.Errorf("cause %v (%v), want %v", e.Cause, e.Err, c.want)
				}
				if e.Source != s.Source || s.Resource != "r" || s.ID != "a" || s.Term == 0 || s.Session == "" || s.Backend != memory.BackendName {
					t.Errorf("start %+v, end %+v: want the same source, naming the elector, term and session", s.Source, e.Source)
				}
				if s.TTL != ttl {
					t.Errorf("TermStart.TTL %v, want %v", s.TTL, ttl)
				}
				if e.Err == nil || e.Duration <= 0 {
					t.Errorf("TermEnd Err %v, Duration %v: want the cause and the term's length", e.Err, e.Duration)
				}
				if len(rec.overruns) != 0 {
					t.Errorf("overruns %+v of a handler that returned at the end of its term", rec.overruns)
				}
				if c.want != election.CauseSessionLost && c.want != election.CauseStoreUnreachable && len(rec.failures) != 0 {
					t.Errorf("store failures %+v, want none: no request failed, and those ended by the elector are none", rec.failures)
				}
			})
		})
	}
}

// TestTermEndedAtStepDownDeadline: a leader cut off from its store reports
// the end of its term at its step-down deadline, (start of the last
// successful renewal) + TTL − StepDownMargin(TTL), with the failed
// renewals before it, each with its latency, and the margins of the
// successful ones.
func TestTermEndedAtStepDownDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		const ttl = 15 * time.Second
		rec := &events{}
		ch := make(chan election.Leadership, 10)
		startElector(t, store, election.FixedRenewals(election.Options{Resource: "r", ID: "a", TTL: ttl, Observers: []*election.Observer{rec.observer()}}), blockingLeader(ch, nil))
		waitLeader(t, ch)
		start := time.Now()
		time.Sleep(10*time.Second + time.Millisecond) // renewals at 5 s and 10 s
		store.Cut("a")
		defer store.Heal("a")
		time.Sleep(ttl)
		synctest.Wait()
		e, at, ok := rec.lastEnd()
		if !ok {
			t.Fatal("no TermEnded")
		}
		want := start.Add(10*time.Second + ttl - election.StepDownMargin(ttl))
		if e.Cause != election.CauseStoreUnreachable || !at.Equal(want) {
			t.Errorf("TermEnded %v at +%v, want %v at +%v", e.Cause, at.Sub(start), election.CauseStoreUnreachable, want.Sub(start))
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.renewals) < 3 {
			t.Fatalf("renewals %+v, want two successes and a failure", rec.renewals)
		}
		first := rec.renewals[0]
		// Sent at 5 s, with the deadline at 13.5 s; the reply is instant.
		if first.Err != nil || first.Margin != ttl-election.StepDownMargin(ttl)-5*time.Second || first.Late() || first.Term == 0 || first.Session == "" {
			t.Errorf("first renewal %+v, want a success with 8.5 s of margin, naming the term and session", first)
		}
		failed := rec.renewals[2]
		rt := election.Options{TTL: ttl}.WithDefaults().RequestTimeout
		if failed.Err == nil || failed.Latency != rt {
			t.Errorf("renewal after the cut %+v, want a failure after the request timeout %v", failed, rt)
		}
		var renewFailures int
		for _, f := range rec.failures {
			if f.Op == election.OpRenew {
				renewFailures++
				if f.Latency != rt || !errors.Is(f.Err, context.DeadlineExceeded) {
					t.Errorf("renew failure %+v, want the request's timeout after %v", f, rt)
				}
			}
		}
		if renewFailures == 0 {
			t.Errorf("no StoreFailed for the renewals; failures %+v", rec.failures)
		}
	})
}

// TestRenewalLatencyAndMargin: a renewal reports how long its reply took,
// and the time then left before the step-down deadline as it stood.
func TestRenewalLatencyAndMargin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		const ttl = 15 * time.Second
		rec := &events{}
		ch := make(chan election.Leadership, 10)
		startElector(t, store, election.FixedRenewals(election.Options{Resource: "r", ID: "a", TTL: ttl, Observers: []*election.Observer{rec.observer()}}), blockingLeader(ch, nil))
		waitLeader(t, ch)
		store.Delay("a", time.Second)
		time.Sleep(7 * time.Second) // the renewal sent at 5 s is answered at 6 s
		synctest.Wait()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.renewals) != 1 {
			t.Fatalf("renewals %+v, want one", rec.renewals)
		}
		// The deadline stood at 13.5 s.
		if r := rec.renewals[0]; r.Err != nil || r.Latency != time.Second || r.Margin != 7500*time.Millisecond {
			t.Errorf("renewal %+v, want a success after 1 s with 7.5 s left", r)
		}
	})
}

// TestStoreRecovered: a follower cut off from its store reports its failed
// requests, and the first success once the store is back.
func TestStoreRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		const ttl = 10 * time.Second
		ch := make(chan election.Leadership, 100)
		startElector(t, store, election.FixedRenewals(election.Options{Resource: "r", ID: "a", TTL: ttl}), blockingLeader(ch, nil))
		waitLeader(t, ch)
		rec := &events{}
		startElector(t, store, election.FixedRenewals(election.Options{Resource: "r", ID: "b", TTL: ttl, Observers: []*election.Observer{rec.observer()}}), blockingLeader(ch, nil))
		synctest.Wait()
		store.Cut("b")
		time.Sleep(ttl)
		synctest.Wait()
		store.Heal("b")
		time.Sleep(ttl)
		synctest.Wait()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		ops := map[election.Op]bool{}
		for _, f := range rec.failures {
			ops[f.Op] = true
			if f.Resource != "r" || f.ID != "b" || f.Backend != memory.BackendName || f.Err == nil {
				t.Errorf("failure %+v, want one naming b and its error", f)
			}
		}
		if !ops[election.OpRenew] && !ops[election.OpWatch] && !ops[election.OpCreateSession] {
			t.Errorf("failures by op %v, want renewals, watches or session creations", ops)
		}
		if len(rec.recovered) != 1 || rec.recovered[0].Failures != len(rec.failures) {
			t.Errorf("recoveries %+v after %d failures, want one counting them", rec.recovered, len(rec.failures))
		}
	})
}

// TestHandlerOverran: a leader call that ignores the end of its term is
// reported at each check, every TTL from its start, with how long it has
// run past the end, and once more as it returns.
func TestHandlerOverran(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := memory.NewStore()
		const ttl = 10 * time.Second
		rec := &events{}
		unblock := make(chan struct{})
		el := startElector(t, store, election.Options{Resource: "r", ID: "a", TTL: ttl, Observers: []*election.Observer{rec.observer()}},
			election.LeaderOnly(func(ctx context.Context, _ uint64) error {
				<-unblock // ignores ctx
				return nil
			}))
		synctest.Wait()
		base := time.Now()
		time.Sleep(time.Second)
		_ = el.Release(context.Background())
		time.Sleep(2*ttl + time.Second) // checks at 10 s and 20 s
		if _, at, ok := rec.lastEnd(); !ok || !at.Equal(base.Add(time.Second)) {
			t.Errorf("TermEnded at +%v, want at the Release, +1s, while the handler still runs", at.Sub(base))
		}
		synctest.Wait()
		close(unblock)
		synctest.Wait()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		want := []string{"start", "end", "overrun returned=false", "overrun returned=false", "overrun returned=true"}
		if fmt.Sprint(rec.order) != fmt.Sprint(want) {
			t.Fatalf("events %v, want %v", rec.order, want)
		}
		for i, d := range []time.Duration{ttl - time.Second, 2*ttl - time.Second, 2*ttl + time.Second} {
			if o := rec.overruns[i]; o.Overrun != d || o.Term != rec.started[0].Term || o.Session == "" {
				t.Errorf("overrun %d: %+v, want %v past the end of term %d", i, o, d, rec.started[0].Term)
			}
		}
	})
}

// TestSharedSessionObservers: a shared session's renewals are its own
// events, without resource or term; the terms on it are its electors'.
func TestSharedSessionObservers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store := memory.NewStore()
		conn := store.Connect("p1")
		srec, erec := &events{}, &events{}
		sess, err := election.NewSharedSession(conn, election.SessionOptions{TTL: 9 * time.Second, Observers: []*election.Observer{srec.observer()}})
		if err != nil {
			t.Fatal(err)
		}
		el, err := election.New(conn, election.Options{Resource: "r", ID: "a", Session: sess, Observers: []*election.Observer{erec.observer()}})
		if err != nil {
			t.Fatal(err)
		}
		if err := el.Start(ctx, election.LeaderOnly(func(ctx context.Context, _ uint64) error { <-ctx.Done(); return nil })); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Second) // renewals at 3, 6, 9 s
		synctest.Wait()
		if err := el.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sess.Close(ctx); err != nil {
			t.Fatal(err)
		}
		srec.mu.Lock()
		defer srec.mu.Unlock()
		erec.mu.Lock()
		defer erec.mu.Unlock()
		if len(srec.renewals) != 3 || len(erec.renewals) != 0 {
			t.Fatalf("session renewals %d, elector renewals %d; want 3 and 0", len(srec.renewals), len(erec.renewals))
		}
		if r := srec.renewals[0]; r.Resource != "" || r.ID != "" || r.Term != 0 || r.Session == "" || r.Backend != memory.BackendName || r.Err != nil {
			t.Errorf("session renewal %+v, want only the session and backend named", r)
		}
		if len(erec.started) != 1 || len(erec.ended) != 1 || erec.ended[0].Cause != election.CauseClosed || erec.started[0].Session != srec.renewals[0].Session {
			t.Errorf("elector terms %+v %+v, want one on the session, closed", erec.started, erec.ended)
		}
		if len(srec.started) != 0 {
			t.Errorf("session saw terms %+v", srec.started)
		}
		if len(srec.stops) != 1 || len(erec.stops) != 1 || srec.stops[0].Resource != "" || erec.stops[0].Resource != "r" {
			t.Errorf("stops of the session %+v, of the elector %+v: want one each", srec.stops, erec.stops)
		}
	})
}

// TestObserversValidated: a nil Observer is an invalid option.
func TestObserversValidated(t *testing.T) {
	err := election.Options{Resource: "r", Observers: []*election.Observer{nil}}.Validate()
	var oe *election.OptionError
	if !errors.As(err, &oe) || oe.Field != "Observers" {
		t.Errorf("Validate with a nil Observer: %v, want an OptionError naming Observers", err)
	}
	err = election.SessionOptions{Observers: []*election.Observer{{}, nil}}.Validate()
	if !errors.As(err, &oe) || oe.Field != "Observers" {
		t.Errorf("SessionOptions.Validate with a nil Observer: %v, want an OptionError naming Observers", err)
	}
}

// TestEndCauseString: every cause has its label.
func TestEndCauseString(t *testing.T) {
	want := map[election.EndCause]string{
		election.CauseUnknown: "unknown", election.CauseReleased: "released", election.CauseLost: "lost",
		election.CauseSessionLost: "session_lost", election.CauseStoreUnreachable: "store_unreachable",
		election.CauseHandlerError: "handler_error", election.CauseHandlerPanic: "handler_panic",
		election.CauseClosed: "closed", election.EndCause(99): "unknown", election.EndCause(-1): "unknown",
	}
	for c, s := range want {
		if c.String() != s {
			t.Errorf("EndCause(%d).String() = %q, want %q", int(c), c.String(), s)
		}
	}
}
