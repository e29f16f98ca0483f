// Package backends opens an election.Elector from a URL, so that an
// application chooses its coordination store by configuration alone:
//
//	el, err := backends.Open(ctx, os.Getenv("ELECTION_BACKEND"), election.Options{Resource: "billing-cron"})
//
// The scheme selects the backend: memory://, consul://, etcd://, redis:// and
// rediss://. Query parameters set election options and the backend's own
// options; an unknown parameter, a bad value or an unknown scheme is an error
// that names it. Parameters common to every backend, overriding the fields of
// the options passed in:
//
//	resource        Options.Resource
//	id              Options.ID
//	value           Options.Value
//	ttl             Options.TTL             (a Go duration such as 15s, or a number of seconds)
//	renewInterval   Options.RenewInterval   (same form)
//	retryInterval   Options.RetryInterval   (same form)
//	waitTime        Options.WaitTime        (same form)
//	requestTimeout  Options.RequestTimeout  (same form)
//
// memory://NAME selects the in-process store NAME of the Opener (default
// "default"): electors opened by one Opener with the same name share a store.
// Each backend package documents its own URL form and parameters.
package backends
