package testserver

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestEtcdStartRestart(t *testing.T) {
	s := StartEtcd(t, EtcdOptions{})
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	check := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.healthy(ctx, hc); err != nil {
			t.Fatalf("not healthy: %v", err)
		}
	}
	check()
	first := s.Process().PID()
	s.Restart(t)
	if s.Process().PID() == first {
		t.Fatal("Restart did not start a new process")
	}
	check()
	s.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.healthy(ctx, hc); err == nil {
		t.Fatal("killed member still healthy")
	}
	s.Restart(t)
	check()
}

func TestEtcdTLS(t *testing.T) {
	s := StartEtcd(t, EtcdOptions{TLS: true, ClientCertAuth: true})
	if !strings.HasPrefix(s.URL(), "https://") {
		t.Fatalf("URL %q", s.URL())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: s.ClientTLS()}}
	if err := s.healthy(ctx, hc); err != nil {
		t.Fatalf("with the client certificate: %v", err)
	}
	anon := s.ClientTLS()
	anon.Certificates = nil
	hc = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, TLSClientConfig: anon}}
	if err := s.healthy(ctx, hc); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	if ca, cert, key := s.TLSFiles(); ca == "" || cert == "" || key == "" {
		t.Fatalf("TLSFiles() = %q, %q, %q", ca, cert, key)
	}
}
