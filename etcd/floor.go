package etcd

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consul-leader/consul-leader/election"
)

var _ election.TermFloorRaiser = (*Backend)(nil)

// OffsetKeySuffix is appended to an election's prefix to name the key that
// holds its term offset, for example "election/billing-cron.~term-offset".
// The key sorts just before the candidates' keys and after every other
// election's (no resource name holds "~"), so that one watch covers both. It
// exists only once a term floor was raised; do not delete it.
const OffsetKeySuffix = ".~term-offset"

// MaxTermFloor is the highest floor RaiseTermFloor accepts, so that a term,
// a create revision plus the offset, cannot overflow.
const MaxTermFloor = math.MaxUint64 / 2

// Retrying a raise after another write changed the leader or the offset in
// between: after raiseConflictBackoff, at most maxRaiseAttempts times.
const (
	raiseConflictBackoff = 5 * time.Millisecond
	maxRaiseAttempts     = 100
)

func offsetKey(prefix string) string { return prefix + OffsetKeySuffix }

// termOffset is the value of the offset key: what is added to the create
// revision of a leader's key to make its term. Keys created after holder
// use current; holder itself (the key that led when the offset was last
// raised) and the keys before it, which are gone, use previous, so that the
// term of a leader is the same before and after a raise.
type termOffset struct {
	current  uint64
	previous uint64
	holder   int64 // create revision: keys created later use current
	mod      int64 // the offset key's ModRevision; 0 if absent
}

// at returns the offset of a leader key created at revision created.
func (o termOffset) at(created int64) uint64 {
	if created <= o.holder {
		return o.previous
	}
	return o.current
}

func (o termOffset) encode() string {
	return fmt.Sprintf("%d %d %d", o.current, o.previous, o.holder)
}

// parseOffset reads an offset key: "<current> <previous> <holder>", in
// decimal; a missing key is no offset.
func parseOffset(kv *mvccpb.KeyValue) (termOffset, error) {
	if kv == nil {
		return termOffset{}, nil
	}
	f := strings.Fields(string(kv.Value))
	var (
		o    termOffset
		errs [3]error
	)
	if len(f) == 3 {
		o.current, errs[0] = strconv.ParseUint(f[0], 10, 64)
		o.previous, errs[1] = strconv.ParseUint(f[1], 10, 64)
		o.holder, errs[2] = strconv.ParseInt(f[2], 10, 64)
	}
	if len(f) != 3 || errs != [3]error{} || o.previous > o.current || o.current > MaxTermFloor || o.holder < 0 {
		return termOffset{}, fmt.Errorf("etcd: term offset %q has an invalid value %q; it must be three decimal numbers: the current offset, the one before, and the create revision of the leader key at the last raise", kv.Key, kv.Value)
	}
	o.mod = kv.ModRevision
	return o, nil
}

// RaiseTermFloor makes every term the backend issues for resource from now
// on greater than floor, as a move between stores needs (see
// election.TermFloorRaiser). It raises the election's term offset, kept in
// the key named by OffsetKeySuffix, so that the create revision of every
// later leader's key plus the offset exceeds floor. The current leader keeps
// its term; a floor already below the terms etcd would issue changes
// nothing. It fails for a floor above MaxTermFloor.
//
// Once raised, Term is no longer the leader key's create revision, which
// Leadership.Session.Fields["createRevision"] still holds for guarding
// writes to etcd.
func (b *Backend) RaiseTermFloor(ctx context.Context, resource string, floor uint64) error {
	prefix, err := b.Prefix(resource)
	if err != nil {
		return err
	}
	if floor > MaxTermFloor {
		return fmt.Errorf("%w: etcd: term floor %d is above %d", election.ErrInvalidOptions, floor, uint64(MaxTermFloor))
	}
	for attempt := 1; ; attempt++ {
		done, err := b.raiseOnce(ctx, prefix, floor)
		if err != nil || done {
			return err
		}
		if attempt == maxRaiseAttempts {
			return fmt.Errorf("etcd: raise term floor of %s: the leader or the offset changed during each of %d attempts", prefix, attempt)
		}
		t := time.NewTimer(raiseConflictBackoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("etcd: raise term floor of %s: %w", prefix, ctx.Err())
		case <-t.C:
		}
	}
}

// raiseOnce reads the leader and the offset, and writes the raised offset
// if neither changed meanwhile; it reports false when they did.
func (b *Backend) raiseOnce(ctx context.Context, prefix string, floor uint64) (bool, error) {
	key := offsetKey(prefix)
	resp, err := b.client.Txn(ctx).Then(firstKey(prefix), clientv3.OpGet(key)).Commit()
	if err != nil {
		return false, storeError("read term offset of "+prefix, err)
	}
	leader := resp.Responses[0].GetResponseRange().GetKvs()
	o, err := parseOffset(first(resp.Responses[1].GetResponseRange().GetKvs()))
	if err != nil {
		return false, err
	}
	// Every key that may lead from now on is created after base.
	base := resp.Header.Revision
	guard := clientv3.Compare(clientv3.CreateRevision(prefix+"/"), "=", 0).WithPrefix() // still no leader
	next := termOffset{previous: o.current}
	if len(leader) > 0 {
		base = leader[0].CreateRevision
		guard = clientv3.Compare(clientv3.CreateRevision(string(leader[0].Key)), "=", base) // still the leader
		next.previous = o.at(base)
	}
	if uint64(base)+1+o.current > floor {
		return true, nil
	}
	next.current, next.holder = floor-uint64(base), base
	put, err := b.client.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", o.mod), guard).
		Then(clientv3.OpPut(key, next.encode())).
		Commit()
	if err != nil {
		return false, storeError("raise term offset of "+prefix, err)
	}
	return put.Succeeded, nil
}

func first(kvs []*mvccpb.KeyValue) *mvccpb.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	return kvs[0]
}
