package backends_test

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/election"
)

// The store is chosen by a URL, from configuration: here the in-memory
// store, with election parameters in the query. The same code opens a
// Consul, etcd or Redis elector from consul://, etcd:// or redis:// URLs.
// An in-memory store lives in an Opener, so that every elector opened
// through it reaches the same store; the package-level Open refuses
// memory:// URLs.
func ExampleOpener_Open() {
	ctx := context.Background()
	var o backends.Opener
	el, err := o.Open(ctx, "memory://?id=node-a&ttl=2s", election.Options{Resource: "billing-cron"})
	if err != nil {
		panic(err) // a bad URL, parameter or option is named in the error
	}
	defer el.Close(ctx)

	leading := make(chan election.Leadership, 1)
	err = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			leading <- l
		}
		return nil
	})
	if err != nil {
		panic(err)
	}
	l := <-leading
	fmt.Printf("%s leads %s on %s, session TTL %v\n", l.LeaderID, l.Resource, l.Session.Backend, l.Session.TTL)

	_, err = o.Open(ctx, "memory://?ttl=soon", election.Options{Resource: "billing-cron"})
	fmt.Println(err)
	// Output:
	// node-a leads billing-cron on memory, session TTL 2s
	// backends: bad backend URL: election: invalid option URL parameter ttl: must be a duration such as 15s or 1500ms, or a number of seconds (got "soon")
}

// ParseOptions applies a URL's common election parameters to the options and
// leaves the backend's own parameters, here Consul's lockDelay, to the
// backend.
func ExampleParseOptions() {
	u, err := url.Parse("consul://127.0.0.1:8500?id=node-a&ttl=20&retryInterval=1500ms&lockDelay=1s")
	if err != nil {
		panic(err)
	}
	opts, rest, err := backends.ParseOptions(u.Query(), election.Options{Resource: "billing-cron", TTL: 15 * time.Second})
	if err != nil {
		panic(err)
	}
	fmt.Println(opts.Resource, opts.ID, opts.TTL, opts.RetryInterval)
	fmt.Println("left to the backend:", rest.Encode())
	// Output:
	// billing-cron node-a 20s 1.5s
	// left to the backend: lockDelay=1s
}
