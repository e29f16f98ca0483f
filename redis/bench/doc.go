// Package bench compares this module's Redis elector with redsync, the
// common Redis lock library, on one server in the same run: graceful
// handover among three candidates, and the commands an idle follower sends.
// It is a module of its own so that redsync never becomes a dependency of
// the library:
//
//	cd redis/bench && go test -run '^$' -bench . -benchtime 100x
package bench
