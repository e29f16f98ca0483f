package election_test

import (
	"errors"
	"testing"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/memory"
)

// TestNilBackend: New, NewOwning and NewSharedSession refuse a nil backend,
// and a nil pointer of a backend type, with an *election.OptionError naming
// backend, instead of an elector that would panic when it starts.
func TestNilBackend(t *testing.T) {
	opts := election.Options{Resource: "r"}
	for _, b := range []election.Backend{nil, (*memory.Conn)(nil)} {
		check := func(what string, err error) {
			t.Helper()
			var oe *election.OptionError
			if !errors.As(err, &oe) || oe.Field != "backend" || !errors.Is(err, election.ErrInvalidOptions) {
				t.Errorf("%s(%T) = %v; want an *election.OptionError naming backend", what, b, err)
			}
		}
		_, err := election.New(b, opts)
		check("New", err)
		_, err = election.NewOwning(b, opts)
		check("NewOwning", err)
		_, err = election.NewSharedSession(b, election.SessionOptions{})
		check("NewSharedSession", err)
	}
}
