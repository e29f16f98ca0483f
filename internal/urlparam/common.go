package urlparam

import (
	"fmt"
	"net/url"

	"github.com/consul-leader/consul-leader/election"
)

// Common takes the election parameters every store's URL accepts
// (resource, id, value, ttl, renewInterval, retryInterval, waitTime,
// requestTimeout) from q into opts, overriding them, and returns the other
// parameters, which are the store's. Durations are those of
// DurationOrSeconds. A parameter given twice, or a bad value, is an error
// wrapping election.ErrInvalidOptions that names it.
func Common(q url.Values, opts election.Options) (election.Options, url.Values, error) {
	rest := url.Values{}
	for key, vals := range q {
		if !commonNames[key] {
			rest[key] = vals // the store's, which checks them
			continue
		}
		if len(vals) != 1 {
			return opts, nil, fmt.Errorf("%w: parameter %s given %d times", election.ErrInvalidOptions, key, len(vals))
		}
		v := vals[0]
		var err error
		switch key {
		case "resource":
			opts.Resource = v
		case "id":
			opts.ID = v
		case "value":
			opts.Value = []byte(v)
		case "ttl":
			opts.TTL, err = DurationOrSeconds(key, v)
		case "renewInterval":
			opts.RenewInterval, err = DurationOrSeconds(key, v)
		case "retryInterval":
			opts.RetryInterval, err = DurationOrSeconds(key, v)
		case "waitTime":
			opts.WaitTime, err = DurationOrSeconds(key, v)
		case "requestTimeout":
			opts.RequestTimeout, err = DurationOrSeconds(key, v)
		default:
			rest[key] = vals
		}
		if err != nil {
			return opts, nil, err
		}
	}
	return opts, rest, nil
}

var commonNames = map[string]bool{
	"resource": true, "id": true, "value": true, "ttl": true, "renewInterval": true,
	"retryInterval": true, "waitTime": true, "requestTimeout": true,
}

// WithCommon returns opts with the common election parameters of u (see
// Common), and a copy of u without them, for a store's OpenURL.
func WithCommon(u *url.URL, opts election.Options) (election.Options, *url.URL, error) {
	if u == nil {
		return opts, nil, nil
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return opts, u, nil // the store's own parsing reports it
	}
	opts, rest, err := Common(q, opts)
	if err != nil {
		return opts, nil, err
	}
	c := *u
	c.RawQuery = rest.Encode()
	return opts, &c, nil
}
