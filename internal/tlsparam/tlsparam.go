// Package tlsparam reads the TLS parameters of a backend URL (caFile,
// certFile, keyFile and tlsServerName) the same way for every backend, and
// builds the TLS configuration they name.
package tlsparam

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/consul-leader/consul-leader/election"
)

// Names of the TLS URL parameters.
const (
	// CAFile is the PEM file of the authorities that sign the servers'
	// certificates; without it, the system's roots are trusted.
	CAFile = "caFile"
	// CertFile is the PEM file of the client's certificate.
	CertFile = "certFile"
	// KeyFile is the PEM file of the client certificate's key.
	KeyFile = "keyFile"
	// ServerName is the name verified in the servers' certificates, by
	// default the host the client dials.
	ServerName = "tlsServerName"
)

// Names are the TLS parameter names, in the order of the documentation.
var Names = []string{CAFile, CertFile, KeyFile, ServerName}

// Params are the TLS parameters of a URL. Given maps each name in Names
// that the URL sets to the spelling it used: the name or an alias.
type Params struct {
	CAFile, CertFile, KeyFile, ServerName string
	Given                                 map[string]string
}

// Take removes the TLS parameters from q and returns them. aliases maps
// deprecated spellings to a name in Names. A parameter given more than once,
// or under both its name and an alias, is an *election.OptionError that
// names the parameters.
func Take(q url.Values, aliases map[string]string) (Params, error) {
	p := Params{Given: map[string]string{}}
	dst := map[string]*string{CAFile: &p.CAFile, CertFile: &p.CertFile, KeyFile: &p.KeyFile, ServerName: &p.ServerName}
	spellings := slices.Clone(Names)
	for alias := range aliases {
		spellings = append(spellings, alias)
	}
	slices.Sort(spellings) // deterministic errors
	for _, spelling := range spellings {
		vs, ok := q[spelling]
		if !ok {
			continue
		}
		name := spelling
		if canon, isAlias := aliases[spelling]; isAlias {
			name = canon
		}
		if len(vs) != 1 {
			return p, &election.OptionError{Field: field(spelling), Rule: "must be given once", Value: strings.Join(vs, ", ")}
		}
		if prev, dup := p.Given[name]; dup {
			a, b := prev, spelling
			if aliases[a] == "" {
				a, b = b, a // the alias first
			}
			return p, &election.OptionError{Field: field(a), Rule: "is a deprecated alias of " + b + " and must not be given with it"}
		}
		p.Given[name] = spelling
		*dst[name] = vs[0]
		q.Del(spelling)
	}
	return p, nil
}

// Any returns the spelling of one TLS parameter given, in the order of
// Names, or "" when none is.
func (p Params) Any() string {
	for _, name := range Names {
		if s, ok := p.Given[name]; ok {
			return s
		}
	}
	return ""
}

// Config returns the TLS configuration the parameters name: TLS 1.2 or
// later, trusting the authorities of CAFile (or the system's roots), with
// the client certificate of CertFile and KeyFile, which go together, and
// verifying ServerName when given. A file that cannot be read or parsed is
// an *election.OptionError naming the parameter, wrapping the cause.
func (p Params) Config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: p.ServerName}
	if p.CAFile != "" {
		pem, err := os.ReadFile(p.CAFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", &election.OptionError{Field: field(p.spelling(CAFile)), Rule: "must be a readable PEM file", Value: strconv.Quote(p.CAFile)}, err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, &election.OptionError{Field: field(p.spelling(CAFile)), Rule: "must hold at least one PEM certificate", Value: strconv.Quote(p.CAFile)}
		}
	}
	cert, key := p.spelling(CertFile), p.spelling(KeyFile)
	if (p.CertFile == "") != (p.KeyFile == "") {
		return nil, &election.OptionError{Field: field(cert), Rule: "and " + key + " must be given together", Value: fmt.Sprintf("%s=%q %s=%q", cert, p.CertFile, key, p.KeyFile)}
	}
	if p.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", &election.OptionError{Field: field(cert), Rule: "and " + key + " must be a matching PEM certificate and key", Value: fmt.Sprintf("%s=%q %s=%q", cert, p.CertFile, key, p.KeyFile)}, err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// Apply sets on dst, a configuration another parser built, what src (a
// configuration Config returned) sets: the authorities, the client
// certificate and the server name, and its minimum version when higher.
func Apply(dst, src *tls.Config) {
	if src.RootCAs != nil {
		dst.RootCAs = src.RootCAs
	}
	if src.Certificates != nil {
		dst.Certificates = src.Certificates
	}
	if src.ServerName != "" {
		dst.ServerName = src.ServerName
	}
	dst.MinVersion = max(dst.MinVersion, src.MinVersion)
}

// spelling is the parameter name as the URL gave it.
func (p Params) spelling(name string) string {
	if s, ok := p.Given[name]; ok {
		return s
	}
	return name
}

func field(name string) string { return "URL parameter " + name }
