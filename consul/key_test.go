package consul_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/consul-leader/consul-leader/consul"
	"github.com/consul-leader/consul-leader/election"
)

// A Key that Consul's HTTP API would clean into another key is refused, as
// Options and as the key parameter of a URL.
func TestKeyCleanedByConsulRefused(t *testing.T) {
	for _, key := range []string{"a/../b", "a/./b", "a//b", "./a", "a/..", "..", "."} {
		o := consul.Options{Options: election.Options{Resource: "r"}, Key: key}
		var oe *election.OptionError
		if err := o.Validate(); !errors.As(err, &oe) || oe.Field != "Key" {
			t.Errorf("Key %q: Validate() = %v; want an OptionError on Key", key, err)
		}
		u := &url.URL{Scheme: consul.Scheme, Host: "127.0.0.1:1", RawQuery: url.Values{"key": {key}}.Encode()}
		if _, err := consul.OpenBackend(t.Context(), u, election.Options{Resource: "r"}); err == nil || !strings.Contains(err.Error(), "Key") {
			t.Errorf("key=%q: OpenBackend = %v; want the Key refused", key, err)
		}
	}
	for _, key := range []string{"a/.b/..c/b.", "svc/leader", "a/...", "folder/"} {
		o := consul.Options{Options: election.Options{Resource: "r"}, Key: key}
		if err := o.Validate(); err != nil {
			t.Errorf("Key %q: Validate() = %v; want valid", key, err)
		}
	}
}
