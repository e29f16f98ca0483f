package memory

import "github.com/consul-leader/consul-leader/election"

// New returns an elector for opts on store. Its connection to the store is
// named after opts.ID, so that store.Cut(opts.ID) cuts it off.
func New(store *Store, opts election.Options) (*election.Elector, error) {
	if store == nil {
		return nil, &election.OptionError{Field: "store", Rule: "must not be nil"}
	}
	if opts.ID == "" {
		opts.ID = opts.WithDefaults().ID
	}
	return election.New(store.Connect(opts.ID), opts)
}
