package backends_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/consul-leader/consul-leader/backends"
	"github.com/consul-leader/consul-leader/election"
)

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	opts := election.Options{Resource: "r"}
	cases := []struct{ url, want string }{
		{"", "no scheme"},
		{"127.0.0.1:8500", "first path segment"},
		{"zookeeper://127.0.0.1", "unknown scheme \"zookeeper\""},
		{"memory://?ttl=abc", "ttl=\"abc\" is not a duration"},
		{"memory://?bogus=1", "does not take the parameter(s) bogus"},
		{"memory://?ttl=1s&ttl=2s", "ttl given 2 times"},
		{"memory://x/path", "takes no path"},
		{"%zz://", "bad backend URL"},
	}
	for _, tc := range cases {
		_, err := backends.Open(ctx, tc.url, opts)
		if !errors.Is(err, backends.ErrBadURL) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v; want ErrBadURL mentioning %q", tc.url, err, tc.want)
		}
	}
	_, err := backends.Open(ctx, "memory://?ttl=-5s", opts)
	if !errors.Is(err, election.ErrInvalidOptions) || !strings.Contains(err.Error(), "TTL") {
		t.Errorf("negative ttl: %v; want an option error naming TTL", err)
	}
}

func TestParseOptions(t *testing.T) {
	u := "memory://?resource=jobs&id=n1&value=10.0.0.1:80&ttl=20&renewInterval=5s&retryInterval=1500ms&waitTime=3s&requestTimeout=2s"
	var o backends.Opener
	el, err := o.Open(context.Background(), u, election.Options{Resource: "ignored", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer el.Close(context.Background())
	opts, rest, err := backends.ParseOptions(map[string][]string{"ttl": {"20"}, "token": {"x"}}, election.Options{})
	if err != nil || opts.TTL != 20*time.Second || rest.Get("token") != "x" {
		t.Errorf("ParseOptions = %+v, %v, %v", opts, rest, err)
	}
}

// Electors opened by one Opener with the same memory:// name share a store.
func TestMemorySharedByName(t *testing.T) {
	ctx := context.Background()
	var o backends.Opener
	leaders := make(chan string, 2)
	for _, id := range []string{"a", "b"} {
		el, err := o.Open(ctx, "memory://demo?id="+id, election.Options{Resource: "r"})
		if err != nil {
			t.Fatal(err)
		}
		defer el.Close(ctx)
		_ = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
			if l.IsLeader {
				leaders <- l.LeaderID
			}
			return nil
		})
	}
	first := <-leaders
	if id, _ := o.MemoryStore("demo").Leader("r"); id != first {
		t.Fatalf("store shows %q, handler %q", id, first)
	}
	select {
	case second := <-leaders:
		t.Fatalf("two leaders on a shared store: %s and %s", first, second)
	case <-time.After(200 * time.Millisecond):
	}
}
