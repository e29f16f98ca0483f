package consul

import (
	"fmt"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/election"
)

// NewSharedSession returns an election.SharedSession on b: one Consul
// session, renewed once per RenewInterval, through which every elector
// made with it in election.Options.Session locks its own resource's key.
// It fails with an *election.OptionError naming Handoff when b's
// Options.Handoff is set, which shared sessions do not support. Closing the
// session does not close b, which belongs to the caller.
func NewSharedSession(b *Backend, o election.SessionOptions) (*election.SharedSession, error) {
	if b == nil {
		return nil, &election.OptionError{Field: "backend", Rule: "must not be nil"}
	}
	if err := b.sharedSupported(); err != nil {
		return nil, err
	}
	return election.NewSharedSession(b, o)
}

// newOnSession builds the elector of o on the backend of o.Session.
func newOnSession(client *api.Client, o Options) (*election.Elector, error) {
	b, ok := o.Session.Backend().(*Backend)
	if !ok {
		return nil, &election.OptionError{Field: "Session", Rule: "must be a shared session of a *consul.Backend", Value: o.Session.Backend().Name()}
	}
	if client != nil && client != b.client {
		return nil, &election.OptionError{Field: "client", Rule: "must be nil or the client of the Session's backend, whose client and Consul options an elector on the session uses", Value: "another client"}
	}
	if o.Key != "" && o.Key != b.Key(o.Resource) {
		return nil, &election.OptionError{Field: "Key", Rule: "must be empty or the key the Session's backend gives the resource (set Options.Key of that backend)", Value: fmt.Sprintf("%q", o.Key)}
	}
	return election.New(b, o.Options)
}
