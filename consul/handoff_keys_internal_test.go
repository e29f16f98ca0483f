package consul

import (
	"testing"

	"github.com/hashicorp/consul/api"
)

// The leadership key of another resource that lies in a resource's
// candidates folder is not taken for a registration, so a release never
// hands the key to that resource's leader, nor deletes its key.
func TestSplitListIgnoresOtherResources(t *testing.T) {
	key := DefaultKey("r")
	other := DefaultKey("r/leader" + CandidatesSuffix + "x")
	reg := candidatesFolder(key) + "0b5f3a3e-1111-2222-3333-444455556666"
	rec := encodeRecord("c", nil, 0)
	pair, offset, cands := splitList(key, api.KVPairs{
		{Key: key},
		{Key: key + OffsetKeySuffix},
		{Key: reg, Session: "0b5f3a3e-1111-2222-3333-444455556666", Value: rec},
		{Key: other, Session: "other-leader", Value: rec},
	})
	if pair == nil || offset == nil || len(cands) != 1 || cands[0].key != reg {
		t.Fatalf("splitList = %v, %v, %+v; want the key, its offset and one registration %s", pair, offset, cands, reg)
	}
}
