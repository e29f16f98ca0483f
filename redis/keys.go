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
	// One string holds the four names, each a part of it: a process may
	// watch thousands of resources, and keeps the names of each for as
	// long as it does.
	base := prefix + ":{" + resource + "}:"
	space := "__keyspace@" + strconv.Itoa(db) + "__:"
	all := space + base + "leader" + base + "term" + base + "events"
	leaderEnd := len(space) + len(base) + len("leader")
	termEnd := leaderEnd + len(base) + len("term")
	return keys{
		leader:   all[len(space):leaderEnd],
		term:     all[leaderEnd:termEnd],
		events:   all[termEnd:],
		keyspace: all[:leaderEnd],
	}
}

// leaseKey is the name of the set of leader keys held through the lease
// with token.
func leaseKey(prefix, token string) string {
	return prefix + ":lease:" + token
}
