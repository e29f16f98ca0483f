// Package redis elects leaders through Redis: a single server, a primary
// managed by Sentinel, or Redis Cluster, through any go-redis v9
// UniversalClient.
//
//	client := goredis.NewClient(&goredis.Options{Addr: "redis:6379", ContextTimeoutEnabled: true})
//	el, err := redis.New(client, redis.Options{Options: election.Options{Resource: "billing-cron"}})
//
// or, from a URL (the elector then owns its client):
//
//	el, err := redis.OpenURL(ctx, u, election.Options{Resource: "billing-cron"})
//
// NewBackend and OpenBackend return the election.Backend alone, for
// election.New or a migration between stores (Backend implements
// election.TermFloorRaiser).
//
// # Store mapping
//
// A session is a random 128-bit ownership token; it has no state on the
// server until it leads, so a follower's renewals send nothing. For a
// resource R and the key prefix P (BackendOptions.KeyPrefix, default
// "election") the backend uses:
//
//   - P:{R}:leader, the leadership record: "<token>\n<term>\n<ID>\n<value>",
//     with a TTL. It exists exactly while a candidate leads.
//   - P:{R}:term, the term counter. It never expires.
//   - P:{R}:events, a pub/sub channel on which acquisitions and releases are
//     announced.
//
// The hash tag {R} puts the keys of one resource in one Redis Cluster slot,
// so that the scripts below may touch them together. Each step is one Lua
// script, atomic on the primary:
//
//   - Acquire: if P:{R}:leader is absent, INCR the term counter and SET the
//     record NX PX TTL, then PUBLISH. The SET starts the TTL, so the engine
//     counts the lease from the moment Acquire was sent
//     (Acquisition.Renewed). If the key already holds the session's token,
//     Acquire only restarts its TTL and returns the same term.
//   - Renew (leader): PEXPIRE the key if it still holds the token; if it does
//     not (expired, deleted, overwritten, lost in a restart or failover) the
//     error wraps election.ErrSessionLost.
//   - Release (Session.Close): DEL the key if it still holds the token, then
//     PUBLISH, so that followers acquire within milliseconds (a session that
//     led and finds the key gone publishes too).
//   - Read: GET the record and its PTTL, or the term counter when free.
//
// Backend.Watch with after == 0 is one read from the primary, which is
// linearizable. A blocking Watch waits on, whichever comes first: a notice on
// P:{R}:events (one pub/sub connection per Backend, closed by Close); a
// keyspace notification of the leader key, where the server publishes them
// (notify-keyspace-events "Kg$" or "KA"), which catches a key deleted or
// overwritten from outside at once; the leader key's remaining TTL, since a
// leader that died announces nothing; and the wait. Each wake-up costs one
// read. Record.Revision is derived from the token and term of a held record
// (odd) or from the term counter of a free one (even), so it changes with
// every change of leadership and never with a renewal. An idle follower
// sends about one read per WaitTime (default 5 s) or per remaining TTL of
// the leader key, whichever is shorter, plus a ping of the subscription every
// 30 s of silence.
//
// A leader watches its own record through Backend.WatchRecord
// (election.RecordWatcher) rather than a blocking Watch: the watch is a
// function of the backend's subscription, not a goroutine. The record is
// read when a Watch of it would wake (a notice, a keyspace event, a
// (re)subscription, a lost subscription connection, a lease's renewal
// that found the key changed), by a few goroutines of the backend (at most
// half of MaxRequests) that run only while such reads are due, and a
// change is passed to the engine. A turn of the following candidates
// (see election.TurnWatcher) does not hold it back. A process leading N
// resources on a shared session thus keeps N handler goroutines and a few
// more, not two per resource.
//
// # A leader key removed from outside
//
// A DEL of the leader key, a SET over it or a FLUSHALL from outside the
// electors frees (or takes) the leadership in Redis at once. The elector
// changes no server setting; how soon the leader learns of the removal, and
// its term ends, depends on what the server publishes:
//
//   - With keyspace events for the key (notify-keyspace-events with K and
//     g for DEL, $ for SET: "K$g", or "KA"): a DEL or SET reaches the
//     leader's watch, and the followers', within milliseconds; a follower
//     may then acquire before the old leader has stepped down, which the
//     fencing token covers.
//   - Without them, and for FLUSHALL and FLUSHDB, which publish no keyspace
//     event: the leader learns it at its next renewal, within
//     RenewInterval (default TTL/3) and a round trip. Stepping down, it
//     announces on P:{R}:events that the key is gone, so the followers
//     learn it then too.
//
// The keyspace channel is subscribed to whether or not the server publishes
// on it (an ACL without the channel "__keyspace@*__:P:*" costs only that).
//
// # Fencing token
//
// Leadership.Term is the value of the term counter the acquisition
// incremented: it grows with every term of the resource, also when the
// leader key expired or was deleted, since the counter is a separate key
// without TTL. If the counter itself is lost (FLUSHALL, a restart without
// persistence, a failover to a replica that had not received it), the next
// acquisition still issues a term above the highest this Backend has seen
// for the resource: every candidate observes the terms of the leaders it
// follows. A candidate that never saw the old terms (a new process) may
// then issue a lower term than before the loss; a downstream system that
// keeps the highest term it accepted refuses such writes instead of
// accepting them twice.
//
// # Safety model
//
// With a single primary (a standalone server, or one Cluster shard's primary
// while it stays primary) at most one candidate leads at any time: the key
// is taken only when absent, the leader steps down at its local deadline,
// StepDownMargin before the key can expire, and renewals and releases check
// the token. This assumes the rate of the leader's clock and the server's
// agree within the margin (a tenth of the TTL).
//
// Redis replicates asynchronously. When a primary fails and Sentinel or
// Cluster promotes a replica, the writes the replica had not received are
// lost: the leader key (a second candidate can then acquire while the old
// leader still acts until its local deadline, so two leaders overlap) and
// possibly the term counter. Redis cannot rule this out; what a user must do:
//
//   - Pass Leadership.Term with every write the leader makes, and have the
//     written system refuse terms lower than the highest it has seen. This
//     makes an overlap harmless: the old leader's writes are refused once the
//     new leader wrote.
//   - On a replicated deployment, bound the loss: min-replicas-to-write 1
//     and a small min-replicas-max-lag on the primary, and persistence
//     (appendonly yes) so that a restarted server keeps its term counters.
//   - If two leaders must be impossible even without fencing, use a
//     consensus store (the etcd or Consul backend) instead.
//
// # Timeouts
//
// The engine gives every request a deadline. go-redis honours a context's
// deadline only when the client has ContextTimeoutEnabled (OpenURL sets it;
// New logs a warning when a *goredis.Client or *goredis.ClusterClient lacks
// it), and it never aborts a request when the context is merely cancelled,
// so a blocking Watch bounds each of its requests by the engine's
// RequestTimeout (the part of its deadline beyond the wait).
//
// # Shared sessions
//
// Redis has no sessions: a Backend emulates the store session of an
// election.SharedSession (Options.Session; New then builds the elector on
// the session's Backend) with a lease key, P:lease:<token>, a set of the
// leader keys held through it that expires TTL after its last renewal.
// The leader keys it holds show the lease's token, and expire at the same
// millisecond as the lease key: an acquisition gives a key the lease key's
// expiry, and each renewal is one script call that extends the lease key
// and every leader key still holding the token together, and drops from
// the set a key deleted or overwritten from outside (the term of that
// resource then ends). When renewals stop, every key expires with the
// lease key, TTL after the last renewal reached the server. Releasing one
// resource deletes its key and takes it out of the set; closing the
// session deletes the keys still held, then the lease key. (On servers
// before Redis 7.0, which lack PEXPIRETIME, a key may outlive the lease
// key by the time the script takes.)
//
// A leader on a shared session reads its record only when a notice, a
// keyspace event or a renewal that found the key changed tells it to: at
// rest, the only commands of a process leading any number of resources are
// the renewals, one per RenewInterval. A renewal's cost grows with the
// keys it extends: about 15 ms of server time for 10,000 keys.
//
// The keys of different resources lie in different Redis Cluster hash
// slots, which one script cannot touch: on a Cluster client (or a go-redis
// Ring), New with Options.Session and Backend.NewLease fail with an
// *election.OptionError for the field Session. Use private sessions there.
//
// # Access control and TLS
//
// Authentication and TLS are the client's: set Username, Password and
// TLSConfig in its options, or use a rediss:// URL with user and password.
// The least a Redis ACL user needs, for the default prefix:
//
//	ACL SETUSER elector on >PASSWORD resetkeys ~election:* resetchannels
//	  &election:* &__keyspace@*__:election:* -@all +hello +ping +eval
//	  +evalsha +get +set +incr +pexpire +pttl +del +publish +subscribe
//	  +unsubscribe
//
// (add +select for a database other than 0, +exists +sadd +srem +smembers
// +pexpireat +pexpiretime for a shared session, +client|setinfo on Redis 7.2 and
// later to avoid a refused, harmless, CLIENT SETINFO). A refusal (NOPERM, or
// a failed authentication) wraps election.ErrPermissionDenied and reaches
// the handler as Leadership.Err. A user without the channels still elects,
// but followers then learn of a release only by their timers (the refusal is
// logged as a warning).
//
// # Defaults
//
// KeyPrefix "election". The election options keep their defaults (TTL 15 s,
// RenewInterval TTL/3, WaitTime 5 s, RequestTimeout TTL/5 at most 10 s,
// RetryInterval 1 s). Redis keys have millisecond TTLs: the TTL is rounded
// up to a whole millisecond.
package redis
