package tlsparam

import (
	"crypto/tls"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consul-leader/consul-leader/election"
)

var aliases = map[string]string{"ca": CAFile, "cert": CertFile, "key": KeyFile}

func TestTake(t *testing.T) {
	q := url.Values{"ca": {"a.pem"}, "certFile": {"c.pem"}, "keyFile": {"k.pem"}, "tlsServerName": {"n"}, "other": {"x"}}
	p, err := Take(q, aliases)
	if err != nil {
		t.Fatal(err)
	}
	if p.CAFile != "a.pem" || p.CertFile != "c.pem" || p.KeyFile != "k.pem" || p.ServerName != "n" {
		t.Errorf("Take = %+v", p)
	}
	if len(q) != 1 || q.Get("other") != "x" {
		t.Errorf("left %v; want only the other parameter", q)
	}
	if p.Any() != "ca" {
		t.Errorf("Any() = %q; want the spelling given, ca", p.Any())
	}
	if p, _ := Take(url.Values{}, aliases); p.Any() != "" {
		t.Errorf("Any() without parameters = %q", p.Any())
	}
	// An alias is only one where the caller accepts it.
	q = url.Values{"ca": {"a.pem"}}
	if p, err := Take(q, nil); err != nil || p.CAFile != "" || !q.Has("ca") {
		t.Errorf("Take without aliases took ca: %+v, %v", p, err)
	}

	for raw, want := range map[string]string{
		"ca=a&caFile=b":     "URL parameter ca: is a deprecated alias of caFile",
		"caFile=b&ca=a":     "URL parameter ca: is a deprecated alias of caFile",
		"key=a&keyFile=b":   "URL parameter key: is a deprecated alias of keyFile",
		"caFile=a&caFile=b": "URL parameter caFile: must be given once",
		"cert=a&cert=b":     "URL parameter cert: must be given once",
	} {
		q, _ := url.ParseQuery(raw)
		_, err := Take(q, aliases)
		if !errors.Is(err, election.ErrInvalidOptions) || !strings.Contains(err.Error(), want) {
			t.Errorf("Take(%s) = %v; want %q", raw, err, want)
		}
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Params{ServerName: "n"}.Config()
	if err != nil || c.ServerName != "n" || c.MinVersion != tls.VersionTLS12 || c.RootCAs != nil {
		t.Errorf("Config() = %+v, %v", c, err)
	}
	for _, tc := range []struct {
		p    Params
		want string
	}{
		{Params{CAFile: filepath.Join(dir, "missing.pem")}, "URL parameter caFile: must be a readable PEM file"},
		{Params{CAFile: notPEM}, "URL parameter caFile: must hold at least one PEM certificate"},
		{Params{CAFile: notPEM, Given: map[string]string{CAFile: "ca"}}, "URL parameter ca: must hold"},
		{Params{CertFile: notPEM}, "URL parameter certFile: and keyFile must be given together"},
		{Params{KeyFile: notPEM}, "URL parameter certFile: and keyFile must be given together"},
		{Params{CertFile: notPEM, KeyFile: notPEM}, "URL parameter certFile: and keyFile must be a matching"},
	} {
		if _, err := tc.p.Config(); !errors.Is(err, election.ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Config(%+v) = %v; want %q", tc.p, err, tc.want)
		}
	}
}

func TestApply(t *testing.T) {
	dst := &tls.Config{ServerName: "host", InsecureSkipVerify: true}
	Apply(dst, &tls.Config{MinVersion: tls.VersionTLS12})
	if dst.ServerName != "host" || !dst.InsecureSkipVerify || dst.MinVersion != tls.VersionTLS12 {
		t.Errorf("Apply of nothing changed %+v", dst)
	}
	Apply(dst, &tls.Config{ServerName: "other", MinVersion: tls.VersionTLS12})
	if dst.ServerName != "other" {
		t.Errorf("ServerName %q; want other", dst.ServerName)
	}
}
