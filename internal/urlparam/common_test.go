package urlparam

import (
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/election"
)

func TestWithCommon(t *testing.T) {
	u, _ := url.Parse("consul://127.0.0.1:8500?ttl=20&resource=r&token=x&waitTime=1500ms")
	opts, rest, err := WithCommon(u, election.Options{Resource: "other", TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if opts.Resource != "r" || opts.TTL != 20*time.Second || opts.WaitTime != 1500*time.Millisecond {
		t.Errorf("options %+v", opts)
	}
	if got := rest.Query(); len(got) != 1 || got.Get("token") != "x" {
		t.Errorf("rest of the URL: %q", rest.RawQuery)
	}
	if u.Query().Get("ttl") != "20" {
		t.Error("the URL given was changed")
	}
	for _, bad := range []string{"consul://h?ttl=1s&ttl=2s", "consul://h?ttl=soon"} {
		u, _ := url.Parse(bad)
		if _, _, err := WithCommon(u, election.Options{}); !errors.Is(err, election.ErrInvalidOptions) {
			t.Errorf("%s: %v, want ErrInvalidOptions", bad, err)
		}
	}
}
