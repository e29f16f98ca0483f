package redis

import (
	"crypto/rand"
	"encoding/hex"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/consul-leader/consul-leader/election"
)

// The leader key holds one string:
//
//	<token> "\n" <term> "\n" <leader ID> "\n" <value>
//
// The token, 32 hexadecimal characters, comes first so that the scripts
// recognise their own record by prefix; the ID is printable text (no newline,
// as election.Options.Validate enforces); the value, last, is raw bytes.

// tokenBytes is the length of a session's random ownership token, in bytes
// before hexadecimal encoding.
const tokenBytes = 16

// newToken returns a random ownership token.
func newToken() (string, error) {
	var b [tokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// payload is the part of a record that the acquire script appends after the
// token and the term it assigns.
func payload(id string, value []byte) string {
	return id + "\n" + string(value)
}

// parseHeld decodes a leader key's value. A value this package did not
// write is reported as held by an unknown session, so that nobody acquires
// over it and the revision still tells it apart.
func parseHeld(raw string) election.Record {
	parts := strings.SplitN(raw, "\n", 4)
	if len(parts) == 4 && len(parts[0]) == 2*tokenBytes {
		if term, err := strconv.ParseUint(parts[1], 10, 64); err == nil && term > 0 {
			rec := election.Record{
				Session:  parts[0],
				Term:     term,
				LeaderID: parts[2],
				Revision: hash64("held", parts[0], parts[1]) | 1,
			}
			if parts[3] != "" {
				rec.Value = []byte(parts[3])
			}
			return rec
		}
	}
	h := hash64("foreign", raw)
	return election.Record{
		Session:  "foreign-" + strconv.FormatUint(h, 16),
		Revision: h | 1,
	}
}

// freeRecord is the record of a resource nobody leads, after term counter
// terms were issued. Held records have odd revisions, free ones even.
func freeRecord(counter uint64) election.Record {
	return election.Record{Revision: 2*counter + 2}
}

func hash64(parts ...string) uint64 {
	h := fnv.New64a()
	for _, p := range parts {
		_, _ = h.Write([]byte(p))
		_, _ = h.Write([]byte{0})
	}
	return h.Sum64()
}
