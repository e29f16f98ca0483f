package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestDemo runs the demo with a fast handover, scrapes it as Prometheus
// would, and checks that the leadership moved, by releases and by a leader
// cut off from the store, that exactly one candidate reports itself
// leader, and that nothing outlives it.
func TestDemo(t *testing.T) {
	defer goleak.VerifyNone(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{handover: 300 * time.Millisecond, ttl: time.Second, candidates: 3, resource: "demo", logger: slog.New(slog.DiscardHandler), out: &out}, ln)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	hc := &http.Client{Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()

	started := regexp.MustCompile(`(?m)^leader_election_terms_started_total\{resource="demo"\} (\d+)$`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := get(t, hc, base+"/metrics")
		if m := started.FindStringSubmatch(body); m != nil {
			n, _ := strconv.Atoi(m[1])
			if n >= 4 && strings.Contains(body, `leader_election_terms_ended_total{cause="store_unreachable",resource="demo"} 1`) {
				if !strings.Contains(body, `leader_election_terms_ended_total{cause="released",resource="demo"}`) {
					t.Errorf("no release counted after %d terms:\n%s", n, body)
				}
				if strings.Contains(body, `leader_election_store_errors_total{op="renew"} 0`) {
					t.Errorf("no failed renewal of the leader cut off:\n%s", body)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 4 terms, or no step-down of a leader cut off, after 10s:\n%s\nnarration:\n%s", body, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Healthy again once the leader cut off has stepped down and the
	// store answers every candidate.
	for i := 0; ; i++ {
		code, body := get(t, hc, base+"/healthz")
		if code == http.StatusOK {
			break
		}
		if i == 100 {
			t.Fatalf("/healthz: %d %s", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Exactly one candidate leads, but a handover may be under way: ask
	// until one answer shows it.
	leaders := 0
	for range 50 {
		leaders = 0
		for i := 1; i <= 3; i++ {
			if code, _ := get(t, hc, fmt.Sprintf("%s/leader/node-%d", base, i)); code == http.StatusOK {
				leaders++
			}
		}
		if leaders == 1 {
			break
		}
		if leaders > 1 {
			t.Fatalf("%d candidates report leading", leaders)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if leaders != 1 {
		t.Errorf("%d candidates report leading, want 1", leaders)
	}
	if code, _ := get(t, hc, base+"/leader/node-9"); code != http.StatusNotFound {
		t.Errorf("/leader/node-9: %d, want 404", code)
	}
	if !strings.Contains(out.String(), "releases") || !strings.Contains(out.String(), "is cut off from the store") {
		t.Errorf("no release or cut narrated:\n%s", out.String())
	}
}

func get(t *testing.T, hc *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
