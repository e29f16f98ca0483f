package consul

import (
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

func held(session string, rev, term uint64, sent time.Time) observation {
	return observation{Record: election.Record{LeaderID: session, Session: session, Term: term, Revision: rev}, sent: sent}
}

// TestKeyStateFollowsLostData checks how the view of a key follows Consul's
// indexes back after a loss of its data: a read sent after a newer record
// was noted that shows a lower index replaces it and calls for a floor
// raise; a read that overlapped the newer one does not.
func TestKeyStateFollowsLostData(t *testing.T) {
	var k keyStates
	const key = "service/r/leader"
	t0 := time.Now()
	k.note(key, held("old", 1500, 1500, t0))
	// Sent before the old record was noted: an overlapping read, not a loss.
	k.note(key, held("new", 20, 20, t0))
	if _, ok := k.newerHolder(key, election.Record{Session: "mine", Revision: 30}); !ok {
		t.Fatal("an overlapping older read replaced the newer record")
	}
	if f := k.lossFloor(key); f != 0 {
		t.Fatalf("lossFloor = %d after an overlapping read, want 0", f)
	}
	// Sent after: Consul lost its data.
	k.note(key, held("new", 20, 20, time.Now()))
	if r, ok := k.newerHolder(key, election.Record{Session: "new", Revision: 20}); ok {
		t.Fatalf("newerHolder = %+v after the loss: the old record still counts", r)
	}
	if term, ok := k.termOf(key, election.Record{Session: "new", Revision: 20}); !ok || term != 20 {
		t.Fatalf("termOf = %d, %t", term, ok)
	}
	if f := k.lossFloor(key); f != 1500 {
		t.Fatalf("lossFloor = %d, want the highest term seen, 1500", f)
	}
	k.floorRaised(key, 1500)
	if f := k.lossFloor(key); f != 0 {
		t.Fatalf("lossFloor = %d after the raise", f)
	}
}

// TestKeyStateLossBySessionIndex checks that a new session's create index
// below the newest record's revision tells of a loss before any read.
func TestKeyStateLossBySessionIndex(t *testing.T) {
	var k keyStates
	const key = "service/r/leader"
	k.note(key, held("old", 1500, 1500, time.Now()))
	k.noteIndex(key, 2000, time.Now())
	if f := k.lossFloor(key); f != 0 {
		t.Fatalf("lossFloor = %d after a higher index", f)
	}
	k.noteIndex(key, 12, time.Now())
	if f := k.lossFloor(key); f != 1500 {
		t.Fatalf("lossFloor = %d, want 1500", f)
	}
	if _, ok := k.newerHolder(key, election.Record{Session: "new", Revision: 20}); ok {
		t.Fatal("the record from before the loss still counts as newer")
	}
}

// TestKeyStateLossByOffset checks that a term offset seen lower than
// before, or gone, tells of a loss, and that the acquisition checks the
// offset it last saw.
func TestKeyStateLossByOffset(t *testing.T) {
	var k keyStates
	const key = "service/r/leader"
	k.note(key, held("old", 40, 1540, time.Now()))
	k.noteOffset(key, termOffset{current: 1500, index: 21})
	if i := k.offsetIndex(key); i != 21 {
		t.Fatalf("offsetIndex = %d, want 21", i)
	}
	k.noteOffset(key, termOffset{current: 2000, previous: 1500, index: 50})
	if f := k.lossFloor(key); f != 0 {
		t.Fatalf("lossFloor = %d after a raise", f)
	}
	k.noteOffset(key, termOffset{})
	if f := k.lossFloor(key); f != 1540 {
		t.Fatalf("lossFloor = %d after the offset was lost, want 1540", f)
	}
	if i := k.offsetIndex(key); i != 0 {
		t.Fatalf("offsetIndex = %d for a missing offset, want 0", i)
	}
}
