package election_test

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// turnConn is a memory store connection whose sessions watch in turn
// (election.TurnWatcher), logging each TurnTaken.
type turnConn struct {
	*memory.Conn
	log *orderLog
}

func (c *turnConn) NewSession(ctx context.Context, p election.SessionParams) (election.Session, error) {
	s, err := c.Conn.NewSession(ctx, p)
	if err != nil {
		return nil, err
	}
	return &turnSession{Session: s, c: c, resource: p.Resource, id: p.ID}, nil
}

type turnSession struct {
	election.Session
	c        *turnConn
	resource string
	id       string
}

var _ election.TurnWatcher = (*turnSession)(nil)

func (s *turnSession) WatchTurn(ctx context.Context, after uint64, wait time.Duration) (election.Record, error) {
	return s.c.Watch(ctx, s.resource, after, wait)
}

// Acquire logs whether the acquisition led.
func (s *turnSession) Acquire(ctx context.Context) (election.Acquisition, error) {
	acq, err := s.Session.Acquire(ctx)
	outcome := "follows"
	if err == nil && acq.Session == s.Info().ID {
		outcome = "leads"
	}
	s.c.log.add("acquire " + s.id + ": " + outcome)
	return acq, err
}

// TurnTaken logs the end of the turn, and whether it came on a leader
// call's goroutine, as the call is about to begin.
func (s *turnSession) TurnTaken() {
	buf := make([]byte, 64<<10)
	where := ""
	if strings.Contains(string(buf[:runtime.Stack(buf, false)]), "(*engine).callLeader") {
		where = " before the leader call"
	}
	s.c.log.add("taken " + s.id + where)
}

// orderLog is the order of what happened.
type orderLog struct {
	mu     sync.Mutex
	events []string
}

func (l *orderLog) add(e string) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

func (l *orderLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// TestTurnTakenBeforeLeaderCall: the engine ends a TurnWatcher's turn on
// the leader call's goroutine just before the call, once per term, and
// right after an acquisition that did not lead.
func TestTurnTakenBeforeLeaderCall(t *testing.T) {
	store := memory.NewStore()
	log := &orderLog{}
	led := make(chan *election.Elector, 2)
	els := map[string]*election.Elector{}
	for _, id := range []string{"a", "b"} {
		el, err := election.New(&turnConn{Conn: store.Connect(id), log: log}, election.Options{Resource: "turn", ID: id, TTL: 10 * time.Second, RetryInterval: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = el.Close(context.Background()) })
		els[id] = el
		if err := el.Start(context.Background(), election.LeaderOnly(func(ctx context.Context, term uint64) error {
			log.add("leader call " + id)
			led <- el
			<-ctx.Done()
			return nil
		})); err != nil {
			t.Fatal(err)
		}
		if id == "a" {
			<-led // b starts as a follower
		}
	}
	time.Sleep(100 * time.Millisecond) // b follows
	if err := els["a"].Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case el := <-led:
		if el != els["b"] {
			t.Fatalf("a led again after its release")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("b does not lead within 10s of a's release")
	}
	want := []string{
		"acquire a: leads", "taken a before the leader call", "leader call a",
		"acquire b: follows", "taken b",
		"acquire b: leads", "taken b before the leader call", "leader call b",
	}
	if got := log.all(); !slices.Equal(got, want) {
		t.Errorf("events %q, want %q", got, want)
	}
}
