package redis_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/url"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/election"
	"github.com/consul-leader/consul-leader/redis"
)

// An elector on a go-redis client: the handler does the leader's work while
// its context lives, and passes the term to every write as a fencing token.
func ExampleNew() {
	client := goredis.NewClient(&goredis.Options{
		Addr:                  "localhost:6379",
		ContextTimeoutEnabled: true, // requests end at the elector's deadlines
	})
	defer client.Close() // the elector does not close it

	el, err := redis.New(client, redis.Options{Options: election.Options{
		Resource: "billing-cron",
		TTL:      10 * time.Second,
	}})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	err = el.Start(ctx, func(ctx context.Context, l election.Leadership) error {
		switch {
		case l.Err != nil:
			log.Printf("cannot campaign: %v", l.Err)
		case l.IsLeader:
			log.Printf("leading, term %d", l.Term)
			<-ctx.Done() // work until the term ends, sending l.Term with each write
		default:
			log.Printf("following %q", l.LeaderID)
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// ... later:
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = el.Close(closeCtx) // releases at once: a follower takes over in milliseconds
}

// An elector from a URL, for a Redis Cluster, with its own key prefix. The
// elector owns the client.
func ExampleOpenURL() {
	u, _ := url.Parse("redis://elector:secret@redis-0:6379?mode=cluster&addr=redis-1:6379&keyPrefix=myapp")
	el, err := redis.OpenURL(context.Background(), u, election.Options{Resource: "indexer"})
	if err != nil {
		log.Fatal(err)
	}
	defer el.Close(context.Background())
}

// Invalid options are refused with an *election.OptionError that names the
// field.
func ExampleOptions_Validate() {
	o := redis.Options{
		Options: election.Options{Resource: "billing-cron"},
		Redis:   redis.BackendOptions{KeyPrefix: "app{1}"},
	}
	err := o.Validate()
	var oe *election.OptionError
	fmt.Println(errors.As(err, &oe), oe.Field)
	fmt.Println(err)
	// Output:
	// true Redis.KeyPrefix
	// election: invalid option Redis.KeyPrefix: must not contain { or }, which would change the keys' hash slot (got "app{1}")
}
