package consul

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"
)

// listObservation is what a recursive read of a prefix of key, at index,
// by a request sent at sent, shows of key, noted as read notes a read of
// the key alone. The term of a holder is found as read finds it: from an
// earlier record of the same holder, else from the key's offset in the
// same listing, else from a transaction of the key and its offset.
//
// A listing leaves out, without an error, the keys its token may not read.
// A key missing from it is therefore read alone once, to tell a missing key
// from a hidden one: a hidden key is watched on its own from then on.
func (b *Backend) listObservation(ctx context.Context, key string, snap map[string]*api.KVPair, index uint64, sent time.Time) (observation, error) {
	pair := snap[key]
	if !b.keys.listable(key) {
		if pair == nil {
			direct, _, err := b.client.KV().Get(key, b.queryOptions(ctx))
			if err != nil {
				return observation{}, wrap(fmt.Sprintf("read %q", key), err)
			}
			if direct != nil {
				b.keys.setListable(key, true)
				b.log.Debug("key hidden from a recursive read; it is watched on its own", "key", key)
				return b.read(ctx, key, b.queryOptions(ctx))
			}
		}
		b.keys.setListable(key, false)
	}
	o := observe(pair, index)
	o.sent = sent
	if !o.Free() {
		if term, ok := b.keys.termOf(key, o.Record); ok {
			o.Term = term
		} else {
			offPair := snap[key+OffsetKeySuffix]
			if offPair == nil && b.checkOffsetReadable(ctx, key) != nil {
				// An offset the token may not read: as read does.
				return b.readWithOffset(ctx, key, index)
			}
			off, err := parseOffset(offPair)
			if err != nil {
				return observation{}, err
			}
			o = observeAt(pair, index, off)
			o.sent = sent
			b.keys.noteOffset(key, off)
		}
	}
	b.keys.note(key, o)
	return o, nil
}
