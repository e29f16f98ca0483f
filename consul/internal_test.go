package consul

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/election"
)

func TestRecordRoundTrip(t *testing.T) {
	v := encodeRecord("cand-1", []byte{0, 1, 2}, 1500*time.Millisecond)
	o := observe(&api.KVPair{Value: v, Session: "s1", ModifyIndex: 42}, 7)
	want := election.Record{LeaderID: "cand-1", Value: []byte{0, 1, 2}, Term: 42, Session: "s1", Revision: 42}
	if o.LeaderID != want.LeaderID || string(o.Value) != string(want.Value) || o.Term != 42 || o.Session != "s1" || o.Revision != 42 {
		t.Errorf("observe = %+v, want %+v", o.Record, want)
	}
	if !o.known || o.lockDelay != 1500*time.Millisecond {
		t.Errorf("lock-delay = %v (known %v)", o.lockDelay, o.known)
	}
}

func TestObserveFreeAndMissing(t *testing.T) {
	// A released key keeps the last leader's value, but has no leader.
	o := observe(&api.KVPair{Value: encodeRecord("old", nil, 0), ModifyIndex: 9}, 12)
	if !o.Free() || o.LeaderID != "" || o.Term != 0 || o.Revision != 9 || !o.known {
		t.Errorf("released key = %+v", o)
	}
	// A missing key is free, at the index of the read.
	if o := observe(nil, 12); !o.Free() || o.Revision != 12 {
		t.Errorf("missing key = %+v", o)
	}
	if o := observe(nil, 0); o.Revision != 1 {
		t.Errorf("revision of a missing key at index 0 = %d, want 1", o.Revision)
	}
}

func TestObserveForeignHolder(t *testing.T) {
	for _, v := range []string{"plain bytes", `{"format":"other"}`, `{"format":"consul-leader/1"}`, ""} {
		o := observe(&api.KVPair{Value: []byte(v), Session: "foreign-session", ModifyIndex: 5, Flags: api.LockFlagValue}, 5)
		if o.LeaderID != "foreign-session" || string(o.Value) != v || o.Term != 5 || o.known {
			t.Errorf("foreign value %q: %+v", v, o)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	var k keyStates
	free := observe(&api.KVPair{Value: encodeRecord("old", nil, 2*time.Second), ModifyIndex: 30}, 30)
	k.note("k", free)
	if d := k.retryAfter("k", free); d < 1900*time.Millisecond || d > 2*time.Second+lockDelayMargin {
		t.Errorf("retryAfter right after the key was freed = %v, want about 2s", d)
	}
	// Seen free long enough ago: back off, doubling.
	k.keys["k"].freeSeen = mono(time.Now().Add(-3 * time.Second))
	first := k.retryAfter("k", free)
	second := k.retryAfter("k", free)
	if first != refusedBackoff || second != 2*refusedBackoff {
		t.Errorf("backoff past the lock-delay = %v then %v", first, second)
	}
	for i := 0; i < 20; i++ {
		if d := k.retryAfter("k", free); d > maxRefusedBackoff {
			t.Fatalf("backoff %v above its cap", d)
		}
	}
	// A foreign holder's lock-delay is unknown: back off from the start.
	foreign := observe(&api.KVPair{Value: []byte("x"), ModifyIndex: 31}, 31)
	k.note("k", foreign)
	if d := k.retryAfter("k", foreign); d != refusedBackoff {
		t.Errorf("retryAfter of a foreign key = %v", d)
	}
}

func TestNewerHolder(t *testing.T) {
	var k keyStates
	held := election.Record{Session: "mine", Revision: 10, Term: 10, LeaderID: "me"}
	k.note("k", observation{Record: held})
	if _, lost := k.newerHolder("k", held); lost {
		t.Error("lost to itself")
	}
	// An older read, answered late, does not count.
	k.note("k", observation{Record: election.Record{Revision: 8}})
	if _, lost := k.newerHolder("k", held); lost {
		t.Error("lost to an older record")
	}
	k.note("k", observation{Record: election.Record{Revision: 11, Session: "theirs", LeaderID: "them"}})
	if r, lost := k.newerHolder("k", held); !lost || r.Session != "theirs" {
		t.Errorf("newerHolder = %+v, %v", r, lost)
	}
}

func TestServerWait(t *testing.T) {
	cases := []struct {
		wait, room time.Duration // room: until the deadline; 0 for none
		want       func(got time.Duration) bool
		what       string
	}{
		{5 * time.Second, 0, func(got time.Duration) bool { return got == 5*time.Second }, "the wait, without a deadline"},
		{5 * time.Second, 7 * time.Second, func(got time.Duration) bool { return got == 5*time.Second }, "the wait, when the jitter fits"},
		{15 * time.Second, 18 * time.Second, func(got time.Duration) bool { return got == 15*time.Second }, "the wait, at api.Lock's settings"},
		{time.Minute, time.Minute + 2*time.Second, func(got time.Duration) bool {
			return got+got/16 <= time.Minute+time.Second && got > 55*time.Second
		}, "a shorter wait whose jitter ends within half the room beyond it"},
		{time.Second, 500 * time.Millisecond, func(got time.Duration) bool { return got < 500*time.Millisecond }, "a wait within a deadline shorter than the wait"},
	}
	for _, c := range cases {
		ctx := context.Background()
		if c.room > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.room)
			defer cancel()
		}
		if got := serverWait(ctx, c.wait); !c.want(got) {
			t.Errorf("serverWait(%v, deadline in %v) = %v; want %s", c.wait, c.room, got, c.what)
		}
	}
}

func TestTxnError(t *testing.T) {
	cases := []struct {
		what string
		want error
	}{
		{`failed to lock key "k" due to lock delay`, errLockDelay},
		{`failed to lock key "k", lock is already held`, errLockHeld},
		{`invalid session "abc"`, election.ErrSessionLost},
		{`Permission denied: token with AccessorID 'x' lacks permission 'key:write' on "k"`, election.ErrPermissionDenied},
		{`ACL not found`, election.ErrPermissionDenied},
	}
	for _, tc := range cases {
		err := txnError(api.TxnErrors{{OpIndex: 0, What: tc.what}})
		if !errors.Is(err, tc.want) {
			t.Errorf("txnError(%q) = %v, want %v", tc.what, err, tc.want)
		}
	}
	if err := txnError(api.TxnErrors{{What: "something else"}}); err == nil || errors.Is(err, election.ErrSessionLost) {
		t.Errorf("unknown txn error = %v", err)
	}
	if err := txnError(nil); err == nil {
		t.Error("empty txn errors: nil error")
	}
}

func TestWrapClassifies(t *testing.T) {
	if err := wrap("x", api.StatusError{Code: 403, Body: "no"}); !errors.Is(err, election.ErrPermissionDenied) {
		t.Errorf("403: %v", err)
	}
	if err := wrap("x", errors.New("Unexpected response code: 500 (rpc error)")); errors.Is(err, election.ErrPermissionDenied) {
		t.Errorf("500: %v", err)
	}
	if !isNotFound(wrap("x", api.StatusError{Code: 404})) {
		t.Error("404 not recognised through a wrap")
	}
	// A refusal for too many connections names the limit, and is no
	// permission problem.
	refused := api.StatusError{Code: 429, Body: "Your IP is issuing too many concurrent connections, please rate limit your calls\n"}
	if err := wrap("x", refused); errors.Is(err, election.ErrPermissionDenied) || !errors.Is(err, refused) ||
		!strings.Contains(err.Error(), "http_max_conns_per_client") {
		t.Errorf("429: %v", err)
	}
}

func TestTermOffset(t *testing.T) {
	off, err := parseOffset(&api.KVPair{Key: "k.term-offset", Value: []byte("500 20"), ModifyIndex: 100})
	if err != nil || off != (termOffset{current: 500, previous: 20, index: 100}) {
		t.Fatalf("parseOffset = %+v, %v", off, err)
	}
	// A holder that acquired before the last raise keeps its offset.
	if o := observeAt(&api.KVPair{Value: encodeRecord("a", nil, 0), Session: "s", ModifyIndex: 90}, 0, off); o.Term != 110 {
		t.Errorf("term of an acquisition before the raise = %d, want 110", o.Term)
	}
	if o := observeAt(&api.KVPair{Value: encodeRecord("a", nil, 0), Session: "s", ModifyIndex: 101}, 0, off); o.Term != 601 {
		t.Errorf("term of an acquisition after the raise = %d, want 601", o.Term)
	}
	if o := observeAt(&api.KVPair{ModifyIndex: 101}, 0, off); o.Term != 0 || o.Revision != 101 {
		t.Errorf("a free key = %+v", o.Record)
	}
	if off, err := parseOffset(nil); err != nil || off != (termOffset{}) {
		t.Errorf("a missing offset = %+v, %v", off, err)
	}
	for _, v := range []string{"", "5", "x 1", "1 5", "-1 0", "1 2 3", "9223372036854775808 0"} {
		if _, err := parseOffset(&api.KVPair{Value: []byte(v)}); err == nil {
			t.Errorf("offset %q was accepted", v)
		}
	}
	if got := string((termOffset{current: 7, previous: 3}).encode()); got != "7 3" {
		t.Errorf("encode = %q", got)
	}
}
