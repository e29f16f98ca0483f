package testserver

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRedisStartRestart(t *testing.T) {
	s := StartRedis(t, RedisOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.do(ctx, "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	pid := s.Process().PID()
	s.Restart()
	if s.Process().PID() == pid {
		t.Fatal("Restart kept the process")
	}
	if v, err := s.do(ctx, "EXISTS", "k"); err != nil || v != "0" {
		t.Fatalf("EXISTS k after restart = %q, %v; want 0 (no persistence)", v, err)
	}
	s.Kill()
	if _, err := s.do(ctx, "PING"); err == nil {
		t.Fatal("PING answered after Kill")
	}
	s.Restart()
	if v, err := s.do(ctx, "PING"); err != nil || v != "PONG" {
		t.Fatalf("PING after Kill and Restart = %q, %v", v, err)
	}
}

func TestRedisTLSAndPassword(t *testing.T) {
	s := StartRedis(t, RedisOptions{TLS: true, Password: "secret"})
	if s.ClientTLS() == nil {
		t.Fatal("no client TLS configuration")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if v, err := s.do(ctx, "PING"); err != nil || v != "PONG" {
		t.Fatalf("PING over TLS = %q, %v", v, err)
	}
}

func TestRedisCluster(t *testing.T) {
	s := StartRedis(t, RedisOptions{Cluster: true})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if v, err := s.do(ctx, "CLUSTER", "INFO"); err != nil || !strings.Contains(v, "cluster_slots_assigned:16384") {
		t.Fatalf("CLUSTER INFO = %q, %v", v, err)
	}
	s.Restart()
	if v, err := s.do(ctx, "CLUSTER", "INFO"); err != nil || !strings.Contains(v, "cluster_state:ok") {
		t.Fatalf("CLUSTER INFO after restart = %q, %v", v, err)
	}
}
