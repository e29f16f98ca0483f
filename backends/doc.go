// Package backends opens an *election.Elector from a URL, so that an
// application chooses its coordination store by configuration alone:
//
//	el, err := backends.FromEnv(ctx, election.Options{Resource: "billing-cron"}) // reads ELECTION_BACKEND
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
// memory://NAME selects the in-process store NAME of an Opener (default
// "default"): electors opened by one Opener with the same name share a
// store, which lives as long as the Opener. The package-level Open and
// FromEnv refuse memory:// URLs, with an error pointing to Opener: they have
// no Opener to share, so two of their electors on memory://NAME would run on
// two stores and both lead. There is deliberately no process-wide registry
// of memory stores (it would keep every store alive for the life of the
// process and couple unrelated code, and tests, of one binary through a
// name); the store is shared exactly as far as the Opener is.
//
// Electors opened by one Opener share the backend, and so the client, of
// their store: a thousand electors of one Consul agent use one HTTP
// connection pool, of one etcd cluster one gRPC connection. URLs name one
// store when they differ only in election parameters, parameter order, or
// the case of scheme and host; consul's key and etcd's prefix, which name
// the key of one resource, give each resource a backend of its own. The
// Opener owns these backends: closing an elector leaves them open, and
// Opener.Close closes them (close the electors first). The package-level
// Open and FromEnv share nothing: each elector owns its client, and closes
// it in Close.
//
// One more parameter, session=shared, puts the elector on the Opener's
// shared session of its store (Opener.Session, election.SharedSession): one
// store session, renewed once for every elector of the process on it. The
// first elector opened with it creates the session with its durations
// (ttl, renewInterval, ...), unless Opener.Session created it before; the
// others must have the same ttl and renewInterval, or none. Passing the
// session as election.Options.Session does the same; a session of another
// store is refused with an error wrapping ErrOtherSession. On
// migrate://?from=A&to=B the shared session holds a session on each store.
// The package-level Open refuses session=shared.
//
// There is no default store: FromEnv fails with an error wrapping
// ErrNoBackend, naming ELECTION_BACKEND and the accepted URL forms, when the
// variable is unset or empty. Durations are Go durations or numbers of
// seconds; a value out of the range of a time.Duration (NaN, Inf, 1e300) is
// refused, naming its parameter, and the options are validated
// (election.Options.Validate) before any client is created.
//
// With consul://...?checkTTL=D and no ttl, the TTL is D, as in consul.New
// and consul.OpenURL.
//
// The backends share a vocabulary beyond these parameters. Their own
// durations (consul's checkTTL and lockDelay, etcd's dialTimeout) take the
// same forms as ttl. Their TLS schemes (consuls://, etcds://, rediss://)
// take the same TLS parameters: caFile (PEM file of the authorities that
// sign the servers' certificates; default the system's roots), certFile and
// keyFile (PEM files of a client certificate and its key, given together)
// and tlsServerName (the name to verify in the servers' certificates;
// default the host dialled). A TLS parameter on a plain scheme is refused.
// On etcds URLs, ca, cert and key are deprecated aliases of caFile,
// certFile and keyFile; giving an alias with its name is an error naming
// both.
//
// Each backend package documents its own URL form and parameters.
package backends
