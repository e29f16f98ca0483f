package redis

import (
	"context"
	"strconv"

	"github.com/consul-leader/consul-leader/election"
)

var _ election.TermFloorRaiser = (*Backend)(nil)

// RaiseTermFloor makes every term the backend issues for resource from now
// on greater than floor, as a move between stores needs: it raises the
// resource's term counter to floor if it is lower. Terms already issued are
// unchanged; a lower floor changes nothing.
func (b *Backend) RaiseTermFloor(ctx context.Context, resource string, floor uint64) error {
	if err := b.check(); err != nil {
		return err
	}
	if err := election.ValidateResource(resource); err != nil {
		return err
	}
	k := b.keys(resource)
	if err := raiseScript.Run(ctx, b.run, []string{k.term}, strconv.FormatUint(floor, 10)).Err(); err != nil {
		return wrap("raise term floor", k.term, err)
	}
	b.observe(resource, floor)
	return nil
}
