package memory

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

// BackendName is the backend's name in election.SessionInfo.
const BackendName = "memory"

// Store is an in-process store of sessions and leadership records. Its zero
// value is not usable; create one with NewStore. It is safe for concurrent
// use.
type Store struct {
	mu       sync.Mutex
	rev      uint64 // store revision: grows with every change; terms are taken from it
	nextID   uint64
	sessions map[string]*session
	records  map[string]*record        // by resource
	waits    map[string]chan struct{}  // by resource: closed and removed on its record's next change
	watches  map[string][]*recordWatch // by resource: the WatchRecord calls not stopped
	healed   chan struct{}             // closed and replaced on every Heal
	cut      map[string]bool           // connection names whose requests hang
	delay    map[string]time.Duration  // connection names whose replies arrive late
}

// session is a store session; it may hold any number of records.
type session struct {
	id      string
	conn    string
	ttl     time.Duration
	expires time.Time
	timer   *time.Timer
	held    map[string]struct{} // the resources whose records it holds
}

type record struct {
	holder   string // session ID; empty when free
	leaderID string
	value    []byte
	term     uint64
	rev      uint64
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{
		rev:      1,
		sessions: map[string]*session{},
		records:  map[string]*record{},
		waits:    map[string]chan struct{}{},
		watches:  map[string][]*recordWatch{},
		healed:   make(chan struct{}),
		cut:      map[string]bool{},
		delay:    map[string]time.Duration{},
	}
}

// Connect returns a connection to the store named name, as an
// election.Backend. Cut and Heal address connections by this name; New names
// an elector's connection after its Options.ID.
func (s *Store) Connect(name string) *Conn { return &Conn{store: s, name: name} }

// Cut makes every request on the connections named name hang until Heal or
// until the request's context ends, as on a partitioned network: the elector
// gets no answer and no error, and its session expires in the store.
func (s *Store) Cut(name string) {
	s.mu.Lock()
	s.cut[name] = true
	s.mu.Unlock()
}

// Heal lets the requests of connections named name through again.
func (s *Store) Heal(name string) {
	s.mu.Lock()
	delete(s.cut, name)
	close(s.healed)
	s.healed = make(chan struct{})
	for _, ws := range s.watches {
		for _, w := range ws {
			if w.conn == name {
				s.tell(w) // a change held back while the connection was cut
			}
		}
	}
	s.mu.Unlock()
}

// Delay makes the store's replies to the connections named name arrive d
// late, as on a slow network: a request takes effect in the store at once,
// and its reply reaches the elector d later, or never if the request's
// context ends first. A reply on its way when Cut is called still arrives.
// Delay(name, 0) undoes it.
func (s *Store) Delay(name string, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		delete(s.delay, name)
		return
	}
	s.delay[name] = d
}

// Expire ends the session that leads resource, as if its TTL had run out,
// and reports whether there was one. Every other resource the session
// leads is freed with it.
func (s *Store) Expire(resource string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.records[resource]
	if r == nil || r.holder == "" {
		return false
	}
	s.endSession(s.sessions[r.holder])
	return true
}

// DeleteRecord removes the leadership record of resource, leaving the
// leader's session alive, as an operator deleting the key would, and reports
// whether there was a leader.
func (s *Store) DeleteRecord(resource string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.records[resource]
	if r == nil || r.holder == "" {
		return false
	}
	s.free(resource, r)
	return true
}

// Reset loses every session and record, as a store restarted without its
// data: leaders lose their sessions, and revisions and terms start again
// from the beginning.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ss := range s.sessions {
		ss.timer.Stop()
	}
	s.sessions = map[string]*session{}
	s.records = map[string]*record{}
	s.rev = 1
	s.broadcast()
}

// Leader returns the current leader's ID and term for resource; an empty ID
// when there is none.
func (s *Store) Leader(resource string) (id string, term uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.records[resource]
	if r == nil || r.holder == "" {
		return "", 0
	}
	return r.leaderID, r.term
}

// The methods below hold s.mu.

func (s *Store) newSession(conn string, ttl time.Duration) *session {
	s.nextID++
	ss := &session{
		id:      fmt.Sprintf("mem-%d", s.nextID),
		conn:    conn,
		ttl:     ttl,
		expires: time.Now().Add(ttl),
		held:    map[string]struct{}{},
	}
	ss.timer = time.AfterFunc(ttl, func() { s.expireIfDue(ss) })
	s.sessions[ss.id] = ss
	return ss
}

func (s *Store) expireIfDue(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sessions[ss.id] != ss {
		return
	}
	if wait := time.Until(ss.expires); wait > 0 {
		ss.timer.Reset(wait)
		return
	}
	s.endSession(ss)
}

func (s *Store) endSession(ss *session) {
	if ss == nil {
		return
	}
	ss.timer.Stop()
	delete(s.sessions, ss.id)
	for resource := range ss.held {
		if r := s.records[resource]; r != nil && r.holder == ss.id {
			s.free(resource, r)
		}
	}
}

// acquire makes ss the holder of resource's record, if it is free, and
// returns the record.
func (s *Store) acquire(ss *session, resource, leaderID string, value []byte) election.Record {
	r := s.records[resource]
	if r == nil {
		r = &record{}
		s.records[resource] = r
	}
	if r.holder == "" {
		s.rev++
		*r = record{holder: ss.id, leaderID: leaderID, value: append([]byte(nil), value...), term: s.rev, rev: s.rev}
		ss.held[resource] = struct{}{}
		s.notify(resource)
	}
	return s.recordOf(resource)
}

// release frees resource's record if session id holds it.
func (s *Store) release(id, resource string) {
	if ss := s.sessions[id]; ss != nil {
		delete(ss.held, resource)
	}
	if r := s.records[resource]; r != nil && r.holder == id && id != "" {
		s.free(resource, r)
	}
}

func (s *Store) free(resource string, r *record) {
	if ss := s.sessions[r.holder]; ss != nil {
		delete(ss.held, resource)
	}
	s.rev++
	*r = record{rev: s.rev}
	s.notify(resource)
}

// changedOf returns a channel closed at the next change of resource's
// record.
func (s *Store) changedOf(resource string) chan struct{} {
	ch := s.waits[resource]
	if ch == nil {
		ch = make(chan struct{})
		s.waits[resource] = ch
	}
	return ch
}

// notify wakes the watchers of resource.
func (s *Store) notify(resource string) {
	if ch := s.waits[resource]; ch != nil {
		close(ch)
		delete(s.waits, resource)
	}
	for _, w := range s.watches[resource] {
		s.tell(w)
	}
}

// broadcast wakes every watcher.
func (s *Store) broadcast() {
	for resource := range s.waits {
		s.notify(resource)
	}
	for _, ws := range s.watches {
		for _, w := range ws {
			s.tell(w)
		}
	}
}

// recordWatch is a WatchRecord call, until it is stopped.
type recordWatch struct {
	conn     string // the connection's name
	resource string
	after    uint64 // the revision last passed, or the caller's
	changed  func(election.Record, error)
	stopped  bool
}

// tell calls w.changed with the record of its resource if its revision is
// not the one w last passed, as a blocking Watch of w's connection would
// return it: not while the connection is cut (Heal tells it), and late by
// the connection's delay.
func (s *Store) tell(w *recordWatch) {
	if w.stopped || s.cut[w.conn] {
		return
	}
	rec := s.recordOf(w.resource)
	if rec.Revision == w.after {
		return
	}
	w.after = rec.Revision
	d := s.delay[w.conn]
	if d <= 0 {
		w.changed(rec, nil)
		return
	}
	time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if !w.stopped {
			w.changed(rec, nil)
		}
	})
}

// unwatch stops w.
func (s *Store) unwatch(w *recordWatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w.stopped {
		return
	}
	w.stopped = true
	ws := s.watches[w.resource]
	for i, x := range ws {
		if x == w {
			ws[i] = ws[len(ws)-1]
			ws[len(ws)-1] = nil
			ws = ws[:len(ws)-1]
			break
		}
	}
	if len(ws) == 0 {
		delete(s.watches, w.resource)
		return
	}
	s.watches[w.resource] = ws
}

func (s *Store) recordOf(resource string) election.Record {
	r := s.records[resource]
	if r == nil {
		return election.Record{Revision: 1}
	}
	return election.Record{
		LeaderID: r.leaderID,
		Value:    append([]byte(nil), r.value...),
		Term:     r.term,
		Session:  r.holder,
		Revision: r.rev,
	}
}

// reply holds a reply to conn back for the connection's delay; it returns
// an error if ctx ends first.
func (s *Store) reply(ctx context.Context, conn string) error {
	s.mu.Lock()
	d := s.delay[conn]
	s.mu.Unlock()
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("memory: reply to connection %q, delayed by %v: %w", conn, d, ctx.Err())
	case <-t.C:
		return nil
	}
}

// reach blocks while the connection is cut, until ctx ends.
func (s *Store) reach(ctx context.Context, conn string) error {
	for {
		s.mu.Lock()
		cut, healed := s.cut[conn], s.healed
		s.mu.Unlock()
		if !cut {
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("memory: connection %q is cut off from the store: %w", conn, ctx.Err())
		case <-healed:
		}
	}
}
