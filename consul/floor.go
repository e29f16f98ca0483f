package consul

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/election"
)

var _ election.TermFloorRaiser = (*Backend)(nil)

// OffsetKeySuffix is appended to the leadership key to name the key that
// holds its term offset: "service/<resource>/leader.term-offset" by default.
const OffsetKeySuffix = ".term-offset"

// MaxTermFloor is the highest floor RaiseTermFloor accepts, so that a term,
// a Raft index plus the offset, cannot overflow.
const MaxTermFloor = math.MaxUint64 / 2

// Retrying a raise after another write changed the key or its offset in
// between: after raiseConflictBackoff, at most maxRaiseAttempts times.
const (
	raiseConflictBackoff = 5 * time.Millisecond
	maxRaiseAttempts     = 100
)

// termOffset is the value of the offset key: what is added to the
// leadership key's ModifyIndex to make a term. An acquisition reads it in
// its own transaction, so its term is ModifyIndex + the offset current at
// the acquisition. The key keeps the offset before its last raise too, for
// a holder that acquired before it: the holder's term stays what it was.
type termOffset struct {
	current  uint64 // the offset of acquisitions after the last raise
	previous uint64 // the offset before the last raise
	index    uint64 // the ModifyIndex of the offset key: when it was last raised; 0 if absent
}

// at returns the offset of the acquisition at index m.
func (o termOffset) at(m uint64) uint64 {
	if m > o.index {
		return o.current
	}
	return o.previous
}

func (o termOffset) encode() []byte {
	return []byte(strconv.FormatUint(o.current, 10) + " " + strconv.FormatUint(o.previous, 10))
}

// parseOffset reads an offset key: "<current> <previous>", in decimal.
func parseOffset(pair *api.KVPair) (termOffset, error) {
	if pair == nil {
		return termOffset{}, nil
	}
	f := strings.Fields(string(pair.Value))
	var o termOffset
	var err1, err2 error
	if len(f) == 2 {
		o.current, err1 = strconv.ParseUint(f[0], 10, 64)
		o.previous, err2 = strconv.ParseUint(f[1], 10, 64)
	}
	if len(f) != 2 || err1 != nil || err2 != nil || o.previous > o.current || o.current > MaxTermFloor {
		return termOffset{}, fmt.Errorf("consul: term offset %q has an invalid value %q; it must be two decimal numbers, the current offset and the one before", pair.Key, pair.Value)
	}
	o.index = pair.ModifyIndex
	return o, nil
}

// checkOffsetReadable fails with an error wrapping
// election.ErrPermissionDenied if the token may not read key's term offset.
// A transaction leaves out, without an error, a key its token may not
// read: without this check such a token would see an offset of 0, and
// issue terms below a floor raised by a migration. It asks Consul once per
// key and backend.
func (b *Backend) checkOffsetReadable(ctx context.Context, key string) error {
	if b.keys.offsetReadable(key) {
		return nil
	}
	offKey := key + OffsetKeySuffix
	if _, _, err := b.client.KV().Get(offKey, b.queryOptions(ctx)); err != nil {
		what := fmt.Sprintf("read term offset %q", offKey)
		if isPermissionDenied(err) {
			what += " (the token needs key:read on it; key_prefix on the key covers it)"
		}
		return wrap(what, err)
	}
	b.keys.setOffsetReadable(key)
	return nil
}

// snapshot is the leadership key and its offset key, as one transaction
// read them.
type snapshot struct {
	pair   *api.KVPair // the leadership key; nil if missing
	offset *api.KVPair // the offset key; nil if missing
	index  uint64      // the index of the read
}

// readBoth reads key and its offset key in one consistent transaction: a
// get-tree of key, which never fails on missing keys, filtered to the two.
func (b *Backend) readBoth(ctx context.Context, key string) (snapshot, error) {
	ops := api.TxnOps{{KV: &api.KVTxnOp{Verb: api.KVGetTree, Key: key}}}
	ok, resp, meta, err := b.client.Txn().Txn(ops, b.queryOptions(ctx))
	if err != nil {
		return snapshot{}, wrap(fmt.Sprintf("read %q", key), err)
	}
	if !ok {
		return snapshot{}, wrap(fmt.Sprintf("read %q", key), txnError(resp.Errors))
	}
	var s snapshot
	if meta != nil {
		s.index = meta.LastIndex
	}
	for _, r := range resp.Results {
		switch {
		case r.KV == nil:
		case r.KV.Key == key:
			s.pair = r.KV
		case r.KV.Key == key+OffsetKeySuffix:
			s.offset = r.KV
		}
	}
	return s, nil
}

// RaiseTermFloor makes every term the backend issues for resource from now
// on greater than floor, as a move between stores needs. It raises the
// resource's term offset, kept in the key named by OffsetKeySuffix, so that
// every later acquisition's ModifyIndex plus the offset exceeds floor. The
// current holder keeps its term; a floor already below the terms Consul
// would issue changes nothing. It fails for a floor above MaxTermFloor.
func (b *Backend) RaiseTermFloor(ctx context.Context, resource string, floor uint64) error {
	if err := election.ValidateResource(resource); err != nil {
		return err
	}
	if floor > MaxTermFloor {
		return fmt.Errorf("%w: consul: term floor %d is above %d", election.ErrInvalidOptions, floor, uint64(MaxTermFloor))
	}
	return b.raiseKeyFloor(ctx, b.Key(resource), floor)
}

// raiseKeyFloor is RaiseTermFloor for the leadership key key.
func (b *Backend) raiseKeyFloor(ctx context.Context, key string, floor uint64) error {
	for attempt := 1; ; attempt++ {
		done, err := b.raiseOnce(ctx, key, floor)
		if err != nil {
			return err
		}
		if done {
			b.keys.floorRaised(key, floor)
			return nil
		}
		if attempt == maxRaiseAttempts {
			return fmt.Errorf("consul: raise term floor of %q: the key or its offset changed during each of %d attempts", key, attempt)
		}
		t := time.NewTimer(raiseConflictBackoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("consul: raise term floor of %q: %w", key, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// raiseOnce tries to raise the offset of key once; done is false when
// another write changed the key or its offset in between.
func (b *Backend) raiseOnce(ctx context.Context, key string, floor uint64) (done bool, err error) {
	s, err := b.readBoth(ctx, key)
	if err != nil {
		return false, err
	}
	off, err := parseOffset(s.offset)
	if err != nil {
		return false, err
	}
	// Every later acquisition gets a Raft index above every index seen
	// here, and above the index of the write below: at least seen + 2.
	seen := max(s.index, off.index)
	if s.pair != nil {
		seen = max(seen, s.pair.ModifyIndex)
	}
	if floor <= seen || floor-seen <= off.current {
		return true, nil
	}
	next := termOffset{current: floor - seen, previous: off.current}
	if s.pair != nil && s.pair.Session != "" && s.pair.ModifyIndex <= off.index {
		// The holder acquired before the last raise: it keeps that offset.
		next.previous = off.previous
	}
	offKey := key + OffsetKeySuffix
	ops := api.TxnOps{
		// A CAS with index 0 creates the key only if it does not exist.
		{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: offKey, Value: next.encode(), Index: off.index}},
	}
	// The holder must not change in between, or its offset would not be
	// the one kept.
	if s.pair != nil {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckIndex, Key: key, Index: s.pair.ModifyIndex}})
	} else {
		ops = append(ops, &api.TxnOp{KV: &api.KVTxnOp{Verb: api.KVCheckNotExists, Key: key}})
	}
	ok, resp, _, err := b.client.Txn().Txn(ops, b.requestOptions(ctx))
	if err != nil {
		return false, wrap(fmt.Sprintf("raise term offset %q", offKey), err)
	}
	if ok {
		b.log.Debug("raised the term offset", "key", offKey, "floor", floor, "offset", next.current)
		return true, nil
	}
	terr := txnError(resp.Errors)
	if errors.Is(terr, election.ErrPermissionDenied) {
		return false, fmt.Errorf("consul: raise term offset %q: %w", offKey, terr)
	}
	b.log.Debug("term offset raise conflicted, trying again", "key", offKey, "err", terr)
	return false, nil
}
