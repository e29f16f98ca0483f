// Package consul elects leaders with Consul sessions and KV locks.
//
//	el, err := consul.New(nil, consul.Options{
//		Options: election.Options{Resource: "billing-cron", TTL: 15 * time.Second},
//	})
//
// New takes a Consul client and the options, as the constructors of the
// other stores do; a nil client is created from the CONSUL_* environment
// variables and closed with the elector. New returns an *election.Elector: the engine of package election on the
// Backend of this package, which only maps the engine's primitives onto
// Consul. NewBackend returns that Backend, for election.New; OpenURL and
// OpenBackend open an elector or a backend from a consul:// URL, for
// package backends.
//
// # Store mapping
//
// Every candidate campaigns with a Consul session of its own, created with
// behaviour release, the election TTL, the configured lock-delay and, by
// default, no health checks. The engine renews it every RenewInterval; a
// renewal answered 404 means Consul invalidated it (election.ErrSessionLost).
//
// The leadership of a resource is the KV key "service/<resource>/leader"
// (Options.Key overrides it), as in Consul's leader election guide. A
// candidate acquires it in one transaction: the lock verb with its session,
// then a get, which returns the key's indexes as of the acquisition. The
// key's value is a JSON document naming the leader's ID and value and its
// session's lock-delay; its flags are api.LockFlagValue, the flags of
// api.Lock. Followers wait for the key to change with consistent blocking
// queries, never by polling; when the key has no session (it was released,
// or its session invalidated) or does not exist, there is no leader.
//
// # Many electors on one backend
//
// Electors that share a Backend (election.New on one NewBackend, or a
// election.SharedSession) share its blocking reads. Watch calls of one key
// from one revision wait for one query, so 1,000 candidates of one resource
// hold one. When more than ListThreshold (8) distinct keys of one root (the
// first path segment: "service/" for the default keys) are watched at once,
// one recursive blocking query of their common prefix serves them all, and
// answers whenever a key under that prefix changes: a process leading
// 10,000 resources holds one such query, sends about one request per the
// longest wait of its callers (at most five minutes) while nothing changes,
// and learns of a change of any key from it at once. Every answer returns the whole prefix,
// so keep other busy data out of it. Watch calls still return at their own
// wait, or when their context ends; a query is cancelled once no call
// waits for it, and Close cancels them all. With Handoff each key keeps its
// own recursive read (shared by the calls of that key). A leader watches
// its own key through WatchRecord (election.RecordWatcher): the recursive
// query calls a function when the key changes, so a leader keeps no
// goroutine waiting for it, and learns of a loss without waiting for the
// turn of another candidate (see WatchTurn). Where no recursive query
// serves the key (fewer keys watched, Handoff, a key the token may not
// list) the watch loops on the key's own reads on a goroutine of its own,
// until a recursive query starts. A client that a
// backend creates opens at most OwnedMaxConns connections (not with
// Handoff). Electors built by New each have a backend of their own, and so
// share nothing.
//
// A leader that gives up, or whose elector is closed, first releases the
// key and only then destroys its session, so the next candidate acquires at
// once. Consul applies its lock-delay only to keys held by a session it
// invalidates: expired, destroyed from outside, or failed by a check.
//
// # Fencing token
//
// Leadership.Term is the key's ModifyIndex at the acquisition: a Raft index,
// higher than every index Consul gave before, also when the key was deleted
// and created again (its LockIndex restarts at 1 then, so it cannot serve).
// The guarantee holds as long as Consul keeps its Raft state: a dev agent,
// which keeps its state in memory, starts counting again when restarted.
//
// # After Consul lost its data
//
// A dev agent restarted, or a cluster rebuilt empty or restored from an
// old snapshot, counts its indexes from the beginning again and has lost
// the term offset (below). A Backend notices it before it acquires: a new
// session's create index, or a consistent read sent after a record was
// noted, shows an index below that record's revision; or an acquisition
// finds the term offset it last saw gone (the transaction checks it, and
// takes nothing then). It then raises the term floor above the highest
// term it has seen before it acquires, so that no candidate, leader or
// follower, is told a lower term than before; and it forgets the records
// from before the loss, which would otherwise count as newer than every
// record until the new indexes pass them. The electors settle on one
// leader, which keeps its term, as after any other change. A process that
// saw no term before the loss cannot tell: raise the floor to the highest
// term the fenced systems hold before it campaigns (RaiseTermFloor).
//
// Backend implements election.TermFloorRaiser, for a live move between
// stores with backends.Migration. A term is then the ModifyIndex plus an
// offset kept in the sibling key "<key>.term-offset" (OffsetKeySuffix; a
// missing key means 0), which an acquisition reads in its own transaction
// and followers read together with the key. RaiseTermFloor raises the
// offset, with a check-and-set, so that every later term is above the
// floor; the offset never decreases, and the key also keeps the offset
// before the last raise, so a holder that acquired before it keeps its term.
// The offset key must not be deleted while terms matter, and a token needs
// key:read on it (key_prefix on the key covers both; a new session checks
// it, once per key, since a transaction would leave an unreadable key out
// without an error) and, to raise floors, key:write.
//
// # Safety
//
// The engine makes a leader step down TTL - TTL/10 after the start of its
// last successful renewal, while Consul keeps a session for at least TTL
// after that renewal, in fact up to twice the TTL. No other candidate can
// acquire the key before the leader's session is gone, so no two candidates
// lead at once, provided nothing ends the session before its TTL. That is
// why sessions have no health checks by default, not even Consul's default
// serfHealth, which invalidates every session of a node that gossip deems
// failed. Checks and ServiceChecks, which may end a session at any time,
// are accepted only with a LockDelay of at least TTL: the key then stays
// refused until the leader has stepped down. The same holds of a session
// destroyed from outside while its leader is cut off from Consul.
//
// A leader that dies is replaced once Consul invalidates its session, up to
// 2×TTL after its last renewal, plus the lock-delay. With the defaults (TTL
// 15 s, Consul's lock-delay of 15 s) that is up to 45 s. A lower LockDelay
// shortens it, at the price of the protection above.
//
// # Fast failover
//
// Options.CheckTTL binds each session to a TTL check of its own on the
// local agent (under a service named CheckServiceName), which every renewal
// passes. When a process dies its check turns critical CheckTTL after the
// last pass, and Consul invalidates the session at once: the next leader
// takes over after about CheckTTL instead of 2×TTL + lock-delay. The
// election TTL must then be at most CheckTTL, may be shorter than Consul's
// 10 s minimum, and defaults to CheckTTL; the Consul session keeps a TTL of
// at least 10 s as a backstop, renewed as needed. No lock-delay is needed:
// the check cannot turn critical sooner than CheckTTL, at least the
// election TTL, after the last pass, and the leader steps down before that. After a crash the agent removes the critical service after a
// minute. Measured on a local agent with CheckTTL 1 s, a crashed leader is
// replaced within a second; with plain sessions of TTL 10 s, after 2×TTL
// from its last renewal.
//
// # Lock-delay
//
// Consul refuses to lock a key for the lock-delay of the session that held
// it, counted from its invalidation. Instead of retrying blindly (api.Lock
// sleeps 5 s), an acquisition refused for its lock-delay returns
// Acquisition.RetryAfter: the time left until the delay ends, counted from
// the moment the key was first seen free and the delay written in its
// value, or a short backoff when that is unknown or past.
//
// # Handoff
//
// With Options.Handoff, a release hands the key over instead of only
// freeing it. A candidate whose acquisition finds the key held registers,
// once per session, with the key "<key>.candidates/<session>"
// (CandidatesSuffix), locked by its session and holding the record it
// would write into the key. Followers then read the key recursively: the
// key, its term offset and the registrations, as of one index. A leader
// that releases sends one transaction that checks the first registered
// candidate's session still holds its registration, unlocks the key, and
// locks it for that candidate with its record. The candidate's open
// blocking read returns with the key held by its session and the offset:
// it leads with the term of that transaction, without a request of its
// own. A handover thus costs one Raft write and one read instead of two
// writes and a read. The leader knows the registrations from its last
// read, which may be older than a candidate's crash or Consul's loss of its
// data: when the transaction is refused because the candidate's
// registration is gone, the leader reads the registrations again and tries
// the first live one once more. If no live candidate is registered, or the
// transaction is refused again, the leader releases the key as usual.
//
// A candidate deletes its registration when it acquires or hands the key
// over (in the same transaction) and when it stops, releasing the key in
// case a leader had just handed it over; a leader deletes, at its
// renewals, the registrations left by candidates whose sessions ended.
//
// The price is availability, never safety: a candidate whose session lives
// but whose process is frozen or dead may be handed the key, and then
// nobody leads until its session ends, up to 2×TTL (or CheckTTL) plus its
// lock-delay, while a plain release lets any live candidate take the key
// at once. With CheckTTL, that wait is about CheckTTL, as for a crashed
// leader. The recursive reads also return on registrations, and on writes
// to any key whose name the key's is a prefix of. Electors with and without
// Handoff may contend for one key: a leader without Handoff releases, a
// follower without it never registers.
//
// # Many resources on one session
//
// A process that leads many resources can hold them all through one Consul
// session: NewSharedSession makes an election.SharedSession on a Backend,
// and every elector made by New with that session in
// election.Options.Session locks its own resource's key with it. Consul
// then lists one session for the process, whatever the number of
// resources, and the session is renewed once per RenewInterval for all of
// them. The session has the Backend's options: its lock-delay, checks, and
// with CheckTTL one TTL check of its own, passed by each renewal. Its name
// is SessionOptions.Name, else Options.SessionName, else
// "consul-leader: shared".
//
// Releasing one elector, or closing it, releases its key only (no
// lock-delay applies) and leaves the session to the others. A key deleted
// or taken from outside ends that resource's term only. When the session
// ends (destroyed from outside, expired, or its check failed), every term
// on it ends, Consul applies the lock-delay to every key it held, and the
// electors campaign again on a new session. The electors' watches share
// blocking reads (see above), and a client the backend creates keeps to
// OwnedMaxConns connections, so a process leading any number of resources
// stays within Consul's default limits.http_max_conns_per_client of 200; a
// client passed in is used as it is, and must bound its connections itself
// (http.Transport's MaxConnsPerHost).
// Handoff is not supported with a shared session: NewSharedSession, and New
// with a session whose backend has it, fail with an error naming Handoff.
//
// # Interplay with api.Lock
//
// The key has the flags of api.Lock, so an api.Lock (or `consul lock`) on the
// same key contends with the electors: at most one of them holds the key at
// a time. A foreign holder shows as the leader with its session ID as
// LeaderID and its value as Value.
//
// # Defaults
//
// Key: service/<resource>/leader. LockDelay: 15 s (none with CheckTTL).
// Handoff: off. Checks: none. SessionName: "consul-leader: <resource>". Datacenter and
// Token: the client's. A nil client: api.DefaultConfig, from the CONSUL_*
// environment variables. The election options keep their defaults (TTL
// 15 s, renewals every TTL/3, blocking reads of WaitTime 5 s), with Consul's
// TTL bounds of 10 s to 24 h unless CheckTTL is set.
//
// # Security
//
// ACL tokens and TLS come from the client's configuration, or from
// Options.Token and the consuls:// URL parameters. A token needs key:write
// on the key, session:write on the agent's node, and, with CheckTTL,
// service:write on CheckServiceName. With Handoff it needs key:write on the
// candidates folder too; key_prefix on the key covers it and the offset. A refusal wraps
// election.ErrPermissionDenied and reaches the handler as Leadership.Err.
package consul
