package redis

import (
	"errors"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/consul-leader/consul-leader/election"
)

// wrap describes a failed request and classifies it for the engine: a
// refusal for lack of rights (NOPERM, or failed authentication: NOAUTH,
// WRONGPASS) wraps election.ErrPermissionDenied; anything else is left
// transient.
func wrap(op, key string, err error) error {
	if denied(err) {
		return fmt.Errorf("redis: %s %s: %w: %w", op, key, election.ErrPermissionDenied, err)
	}
	return fmt.Errorf("redis: %s %s: %w", op, key, err)
}

// denied reports whether err is a refusal for lack of rights.
func denied(err error) bool {
	if goredis.IsPermissionError(err) || goredis.IsAuthError(err) {
		return true
	}
	// A NOPERM raised by a command inside a script comes back, depending on
	// the server's version, with the script's own error prefix.
	var rerr goredis.Error
	return errors.As(err, &rerr) && strings.Contains(rerr.Error(), "NOPERM")
}
