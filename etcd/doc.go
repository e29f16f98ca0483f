// Package etcd elects leaders with etcd v3, through the engine of package
// election: New takes an etcd client (go.etcd.io/etcd/client/v3), OpenURL an
// etcd:// URL, and both return an *election.Elector.
//
//	el, err := etcd.New(client, etcd.Options{Options: election.Options{Resource: "billing-cron"}})
//
// # Store mapping
//
// A candidate's session is an etcd lease granted with the election TTL,
// which must be a whole number of seconds, at least MinTTL (2 s: an etcd
// member at its default --election-timeout of 1 s grants no shorter lease).
// The engine renews it with one keepalive request per RenewInterval, with
// the engine's deadline; the client's background KeepAlive, which renews on
// its own schedule, is not used. The renewals of all the leases of one
// Backend share one LeaseKeepAlive stream, opened by the first renewal and
// again by the next one after it breaks (a broken stream fails the
// renewals waiting on it); Backend.Close ends it. A lease the store no
// longer has is election.ErrSessionLost.
//
// To campaign, a candidate puts the key Prefix + "/" + its lease ID in hex,
// bound to its lease, unless the key exists (a transaction comparing its
// CreateRevision with 0). The leader is the candidate whose key has the
// lowest create revision under the prefix. The key's value is the
// candidate's ID, followed by a newline and its Value when it has one.
// Giving leadership up deletes the key, guarded by its lease, and then
// revokes the lease. Prefix defaults to "election/" and the resource, with
// every "/" in the resource written %2F (see DefaultPrefix).
//
// This is the layout of etcd's own concurrency.Election, which
// `etcdctl elect` uses, for three reasons:
//
//   - Fairness: candidates queue in the order they arrived, and leadership
//     passes down the queue; a departing leader cannot win again ahead of
//     those waiting.
//   - Interoperability: `etcdctl elect -l election/billing-cron` shows the
//     leader (its ID on the first line), and electors of this package,
//     concurrency.Election and `etcdctl elect` campaigning on the same prefix
//     contend correctly with each other. A foreign candidate's value, which
//     has no newline as a rule, is its LeaderID.
//   - Wake-up: the next leader is decided by the store the moment the
//     leader's key is deleted, without a race among the followers. Each
//     follower keeps one watch on the prefix, from which it maintains the
//     whole queue, so that it learns the new leader from the deletion event
//     itself, without a read. A graceful handover takes one write and one
//     watch event. While the leader stays, a follower sends nothing but its
//     lease keepalives; its watch stream stays open and silent.
//
// Elector.Leader reads the first key linearizably.
//
// # Many resources on one lease
//
// Backend implements election.SessionSharer: the electors of many resources
// in one process can campaign on one etcd lease, a SharedSession, which
// the engine renews with one keepalive per RenewInterval for all of
// them. Each elector campaigns as above, with its key Prefix + "/" + the
// shared lease's ID, bound to that lease:
//
//	b, err := etcd.NewBackend(client, etcd.Options{})
//	ss, err := election.NewSharedSession(b, election.SessionOptions{})
//	el, err := etcd.New(client, etcd.Options{Options: election.Options{Resource: "billing-cron", Session: ss}})
//
// Such electors are made with New on the client of the session's backend,
// which serves them: its Prefix applies, and Options.Prefix must be empty
// or the same. A session of another backend or client is refused, and so
// is one given to OpenURL. Close the electors, then the session, then the
// backend.
//
// A Release, or the end of one elector, deletes that resource's key only,
// so that its next candidate leads at once; the other terms go on. A lease
// revoked from outside frees every resource on it at once, and every term
// on it ends as its watch or the next renewal tells; a process cut off from
// etcd ends every term on its lease before etcd can expire it. Either way,
// the electors campaign again on a new lease. While the leaders stay, the
// process sends nothing but the lease's keepalives. Electors started
// together take turns at acquiring: at most 64 of a session's
// acquisitions are in flight at a time (Backend.MaxAcquiring), which
// keeps what a burst holds at once small (measured: 10,000 resources
// started at once, all led within 1.9-2.5 s on one local member, for 56-58
// MiB of growth in all).
//
// A Backend made with NewBackend or OpenBackend, as a SharedSession's is,
// follows every election under its DefaultPrefix with one etcd watch of
// the prefix root DefaultPrefixRoot + "/", run by one goroutine however
// many resources it serves: it loads the candidates' keys and term offsets
// of all those elections with one read of the root, in pages of 1,000 keys
// at one revision, and hands each event to the election its key belongs
// to. A watch that must resume from a compacted revision is created anew
// and reloads. The backend keeps every key under the root in memory. A
// client whose role may read some elections' prefixes but not the whole
// root is refused that watch: the backend logs a warning and, for its
// lifetime, watches each election's prefix on its own, with one watch and
// one goroutine per resource watched. A resource with another Prefix is
// watched on its own too, and so is the election of an elector made with
// New without a session, or with OpenURL, whose backend serves it alone.
//
// # Fencing token
//
// Leadership.Term is the create revision of the leader's key: etcd's
// revision is global and only grows, so every term of a resource, and of any
// resource, has a greater token than those before it, also across restarts
// of etcd. The leader's key is in Leadership.Session.Fields["key"], and its
// create revision in Fields["createRevision"]. A leader guards a write to
// etcd with them by making the write conditional on its key still being the
// one created then:
//
//	key := l.Session.Fields["key"]
//	rev, _ := strconv.ParseInt(l.Session.Fields["createRevision"], 10, 64)
//	resp, err := client.Txn(ctx).
//		If(clientv3.Compare(clientv3.CreateRevision(key), "=", rev)).
//		Then(clientv3.OpPut("billing/last-run", now)).
//		Commit()
//	// resp.Succeeded is false once the term is over.
//
// Other systems take Term with every write and refuse tokens lower than the
// highest they have seen.
//
// Backend implements election.TermFloorRaiser, for a live move between
// stores (see package backends): RaiseTermFloor keeps an offset in the key
// Prefix + OffsetKeySuffix, which is added to the create revision of every
// later leader's key. Term then exceeds the create revision, which still
// guards etcd writes as above; the key exists only once a floor was raised.
//
// A cluster rebuilt empty, or restored from an old snapshot, counts its
// revisions from the beginning again and has lost the offset. A Backend
// notices it when a read, an acquisition or a lease grant sent after it
// recorded a state shows a lower revision: it then forgets that state
// (which would otherwise count as newer than every state until the new
// revisions pass it), creates its watch anew (the old one would wait for
// revisions far in the member's future), and raises the term floor above
// the highest term it has seen before its next acquisition, so that no
// candidate is told a lower term than before. The electors settle on one
// leader, which keeps its term. A process that saw no term before the loss
// cannot tell: raise the floor to the highest term the fenced systems hold
// before it campaigns.
//
// # Safety model
//
// etcd expires a lease no earlier than its TTL after the raft leader
// received the last keepalive, and a change of raft leader extends every
// lease rather than shortening it. The engine ends a term TTL -
// election.StepDownMargin(TTL) after the start of the last renewal that
// succeeded, before the lease can expire; only then does the key disappear
// and the next candidate lead. Watches require the member to have a raft
// leader, so a follower connected to a member cut off from its cluster sees
// an error rather than silence.
//
// Deleting the leader's key or revoking its lease from outside (etcdctl)
// frees the leadership at once: the next candidate may start leading one
// watch event before the old leader learns it has lost. Writes fenced with
// Term, as above, are safe from that moment.
//
// Two elections must not use prefixes of which one is the other followed by
// "/" and more, or the shorter one would see the longer one's candidates as
// its own; DefaultPrefix never produces such prefixes.
//
// # Defaults and errors
//
// Besides Prefix, the defaults are those of election.Options: TTL 15 s,
// RenewInterval TTL/3, WaitTime 5 s, RequestTimeout TTL/5. A member
// configured with a longer election timeout may grant a longer lease than
// the TTL: the elector still steps down in time, the store frees a dead
// leader's election later, and Leadership.Session.TTL shows the lease
// granted.
//
// Users, roles and TLS are set on the client (or in the URL for OpenURL). A
// request etcd refuses for lack of rights, or a wrong password, is an error
// wrapping election.ErrPermissionDenied, which the handler sees in
// Leadership.Err. A candidate needs read and write permission on every key
// that starts with its prefix, which covers the candidates' keys and the
// term offset key:
//
//	etcdctl role grant-permission elector readwrite election/billing-cron --prefix
//
// An observer that only calls Leader needs read permission on the same
// range.
package etcd
