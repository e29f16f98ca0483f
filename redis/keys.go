package redis

import "strconv"

// keys are the Redis names one resource is led through. They share the hash
// tag {resource}, so that on Redis Cluster they live in one slot and the
// scripts, which touch several of them, are allowed.
type keys struct {
	leader   string // the leader's record; exists exactly while a candidate leads
	term     string // the term counter, never expires
	events   string // channel of the release and acquisition notices
	keyspace string // keyspace-notification channel of leader
}

func newKeys(prefix, resource string, db int) keys {
	base := prefix + ":{" + resource + "}:"
	return keys{
		leader:   base + "leader",
		term:     base + "term",
		events:   base + "events",
		keyspace: "__keyspace@" + strconv.Itoa(db) + "__:" + base + "leader",
	}
}

// leaseKey is the name of the set of leader keys held through the lease
// with token.
func leaseKey(prefix, token string) string {
	return prefix + ":lease:" + token
}
