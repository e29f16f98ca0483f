// Command demo exports elections as Prometheus metrics: it runs three
// candidates of one resource on the in-memory store in this process, serves
// their metrics, a health check and a leader readiness check on 127.0.0.1,
// and makes the leadership move every few seconds, so that the metrics
// move: the leader releases it twice, then is cut off from the store and
// steps down by itself. From the prometheus directory of the repository:
//
//	go run ./examples/demo                      # until Ctrl-C, on 127.0.0.1:9464
//	curl -s 127.0.0.1:9464/metrics | grep ^leader_election_
//	curl -i 127.0.0.1:9464/healthz              # liveness: 500 while a leader cannot renew
//	curl -i 127.0.0.1:9464/leader/node-1        # readiness: 200 while node-1 leads, else 503
//
// Flags: -port, -handover (the time between releases), -ttl, -candidates,
// -for (stop after that long; default: run until interrupted).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	cfg := config{}
	port := flag.Int("port", 9464, "port on 127.0.0.1 to serve /metrics, /healthz and /leader/{id} on")
	flag.DurationVar(&cfg.handover, "handover", 5*time.Second, "how often the leadership moves (a release, or a leader cut off from the store)")
	flag.DurationVar(&cfg.ttl, "ttl", 2*time.Second, "the candidates' session TTL")
	flag.IntVar(&cfg.candidates, "candidates", 3, "number of candidates")
	flag.StringVar(&cfg.resource, "resource", "demo", "the resource to lead")
	runFor := flag.Duration("for", 0, "stop after this long (0: run until interrupted)")
	verbose := flag.Bool("v", false, "log the electors' decisions")
	flag.Parse()
	cfg.logger = slog.New(slog.DiscardHandler)
	if *verbose {
		cfg.logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	cfg.out = os.Stdout

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *runFor > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *runFor)
		defer cancel()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	fmt.Printf("serving http://%s/metrics, /healthz and /leader/{id}\n", ln.Addr())
	if err := run(ctx, cfg, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
