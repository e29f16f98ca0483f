package consul

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/consul-leader/consul-leader/election"
)

// errLockDelay is a lock refused because the key's lock-delay still runs.
var errLockDelay = errors.New("consul: key refused during its lock-delay")

// errLockHeld is a lock refused because another session holds the key.
var errLockHeld = errors.New("consul: key held by another session")

// wrap describes a failed request, classifying Consul's refusals: an error
// for lack of rights wraps election.ErrPermissionDenied.
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	if isPermissionDenied(err) {
		return fmt.Errorf("consul: %s: %w: %w", what, election.ErrPermissionDenied, err)
	}
	if isTooManyConns(err) {
		return fmt.Errorf("consul: %s: the agent refuses this client address more connections (its limits.http_max_conns_per_client; a client the backend creates keeps to OwnedMaxConns): %w", what, err)
	}
	return fmt.Errorf("consul: %s: %w", what, err)
}

// isTooManyConns reports Consul's refusal of a connection beyond its limit
// of concurrent connections per client address: an HTTP 429.
func isTooManyConns(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == http.StatusTooManyRequests
}

// isPermissionDenied reports a refusal by Consul's ACLs: an HTTP 403, or the
// messages Consul puts in 403 bodies and in transaction errors.
func isPermissionDenied(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) && se.Code == http.StatusForbidden {
		return true
	}
	return isPermissionText(err.Error())
}

func isPermissionText(s string) bool {
	s = strings.ToLower(s)
	return strings.Contains(s, "permission denied") || strings.Contains(s, "acl not found")
}

// isNotFound reports an HTTP 404.
func isNotFound(err error) bool {
	var se api.StatusError
	return errors.As(err, &se) && se.Code == http.StatusNotFound
}

// txnError classifies the errors of a transaction that Consul rolled back.
func txnError(errs api.TxnErrors) error {
	if len(errs) == 0 {
		return errors.New("consul: transaction failed without an error")
	}
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.What)
	}
	text := strings.Join(msgs, "; ")
	switch {
	case isPermissionText(text):
		return fmt.Errorf("%w: %s", election.ErrPermissionDenied, text)
	case strings.Contains(text, "invalid session"):
		return fmt.Errorf("%w: %s", election.ErrSessionLost, text)
	case strings.Contains(text, "lock delay"):
		return fmt.Errorf("%w: %s", errLockDelay, text)
	case strings.Contains(text, "lock is already held"):
		return fmt.Errorf("%w: %s", errLockHeld, text)
	}
	return errors.New(text)
}
