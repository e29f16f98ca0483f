package etcd

import (
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/consul-leader/consul-leader/election"
)

// storeError wraps an error of an etcd request made for op: a refusal for
// lack of rights wraps election.ErrPermissionDenied, a missing lease wraps
// election.ErrSessionLost.
func storeError(op string, err error) error {
	switch {
	case permissionDenied(err):
		return fmt.Errorf("etcd: %s: %w: %w", op, election.ErrPermissionDenied, err)
	case errors.Is(err, rpctypes.ErrLeaseNotFound):
		return fmt.Errorf("etcd: %s: %w: %w", op, election.ErrSessionLost, err)
	}
	return fmt.Errorf("etcd: %s: %w", op, err)
}

// permissionDenied reports whether err is etcd refusing the client's user:
// missing rights on a key, a missing or unknown user, or a wrong password.
func permissionDenied(err error) bool {
	for _, e := range []error{
		rpctypes.ErrPermissionDenied,
		rpctypes.ErrUserEmpty,
		rpctypes.ErrUserNotFound,
		rpctypes.ErrAuthFailed,
		rpctypes.ErrRoleNotGranted,
		rpctypes.ErrPermissionNotGranted,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return status.Code(err) == codes.PermissionDenied
}

// watchError wraps the error of a watch response as storeError does. etcd
// cancels a watch of keys the user may not read with a reason that the
// client hands over as text only: that text is recognized as a refusal.
func watchError(op string, wr clientv3.WatchResponse) error {
	err := wr.Err()
	if wr.Canceled && strings.Contains(err.Error(), rpctypes.ErrPermissionDenied.Error()) {
		return fmt.Errorf("etcd: %s: %w: %w", op, election.ErrPermissionDenied, err)
	}
	return storeError(op, err)
}
