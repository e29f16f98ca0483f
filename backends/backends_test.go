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
		{"memory://?ttl=abc", "URL parameter ttl: must be a duration such as 15s or 1500ms, or a number of seconds (got \"abc\")"},
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

func TestMigrateURL(t *testing.T) {
	ctx := context.Background()
	var o backends.Opener
	el, err := o.Open(ctx, "migrate://?from=memory://old&to=memory://new&id=a", election.Options{Resource: "r"})
	if err != nil {
		t.Fatal(err)
	}
	defer el.Close(ctx)
	led := make(chan election.Leadership, 1)
	_ = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
		if l.IsLeader {
			led <- l
		}
		return nil
	})
	l := <-led
	if id, _ := o.MemoryStore("old").Leader("r"); id != "a" {
		t.Errorf("old store leader %q, want a", id)
	}
	if id, term := o.MemoryStore("new").Leader("r"); id != "a" || term != l.Term {
		t.Errorf("new store leader %q term %d; handler term %d", id, term, l.Term)
	}
	for _, bad := range []struct{ url, want string }{
		{"migrate://?from=memory://a", "needs both"},
		{"migrate://?from=memory://a&to=memory://b&x=1", "takes only the parameters"},
		{"migrate://?from=memory://a%3Fttl%3D5s&to=memory://b", "on its own URL"},
		{"migrate://?from=migrate://&to=memory://b", "cannot nest"},
		{"migrate://?from=nope://a&to=memory://b", "unknown scheme"},
	} {
		if _, err := o.Open(ctx, bad.url, election.Options{Resource: "r"}); !errors.Is(err, backends.ErrBadURL) || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Open(%q) = %v; want ErrBadURL mentioning %q", bad.url, err, bad.want)
		}
	}
}
