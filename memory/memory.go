package memory

import "github.com/consul-leader/consul-leader/election"

// New returns an elector for opts on store. Its connection to the store is
// named after opts.ID, so that store.Cut(opts.ID) cuts it off. With
// opts.Session set, the elector uses the session's connection instead, which
// must be one of store's.
func New(store *Store, opts election.Options) (*election.Elector, error) {
	if store == nil {
		return nil, &election.OptionError{Field: "store", Rule: "must not be nil"}
	}
	if opts.Session != nil {
		c, ok := opts.Session.Backend().(*Conn)
		if !ok || c.store != store {
			return nil, &election.OptionError{Field: "Session", Rule: "must be a session on a connection to this memory store (see Store.Connect)", Value: opts.Session.Backend().Name()}
		}
		return election.New(c, opts)
	}
	if opts.ID == "" {
		opts.ID = opts.WithDefaults().ID
	}
	return election.New(store.Connect(opts.ID), opts)
}
