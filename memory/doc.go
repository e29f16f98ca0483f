// Package memory is an in-process coordination store for leader election:
// the reference implementation of election.Backend, and the store to use in
// an application's own unit tests.
//
// A Store is shared by the electors of one process. It has the semantics of
// the real stores: sessions that expire TTL after their last renewal,
// leadership bound to a session, terms that only grow, and blocking reads
// that wake on every change. It reads time only through the time package, so
// tests that run under testing/synctest see TTLs pass in fake time, in
// microseconds of real time.
//
// The Store also gives tests the faults the real world has: Cut makes one
// elector's requests hang as on a partitioned network, Heal undoes it; Delay
// makes the store's replies to one elector arrive late, as on a slow
// network, while its requests take effect at once; Expire ends the leader's
// session as a missed renewal would; DeleteRecord removes the leader's record
// from under it; Reset loses every session and record, and starts terms
// again, as a store restarted without its data. An application can so test
// how it reacts to losing leadership without a server.
package memory
