package consul

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/hashicorp/consul/api"
)

// checkDeregisterAfter is how long a check-bound session's service may stay
// critical before the agent removes it: the cleanup after a crash. It is
// Consul's minimum.
const checkDeregisterAfter = "1m"

// ttlCheck is the agent TTL check of one check-bound session, carried by a
// service of its own so that a critical check does not mark the node, and
// every other service on it, unhealthy.
type ttlCheck struct {
	serviceID string
	checkID   string
}

// registerCheck registers a passing TTL check on the local agent, under a
// new instance of the CheckServiceName service.
func (b *Backend) registerCheck(ctx context.Context, cf checkFor, ttl time.Duration) (*ttlCheck, error) {
	var r [8]byte
	if _, err := rand.Read(r[:]); err != nil {
		return nil, fmt.Errorf("consul: check ID: %w", err)
	}
	c := &ttlCheck{serviceID: CheckServiceName + "-" + hex.EncodeToString(r[:])}
	c.checkID = "service:" + c.serviceID
	name := cf.name
	if name == "" {
		name = "leader election shared session " + c.serviceID
	}
	reg := &api.AgentServiceRegistration{
		ID:   c.serviceID,
		Name: CheckServiceName,
		Meta: cf.meta,
		Check: &api.AgentServiceCheck{
			CheckID:                        c.checkID,
			Name:                           name,
			TTL:                            ttl.String(),
			Status:                         api.HealthPassing,
			DeregisterCriticalServiceAfter: checkDeregisterAfter,
		},
	}
	opts := api.ServiceRegisterOpts{Token: b.opts.Token}.WithContext(ctx)
	if err := b.client.Agent().ServiceRegisterOpts(reg, opts); err != nil {
		return nil, wrap(fmt.Sprintf("register check %q", c.checkID), err)
	}
	return c, nil
}

// passCheck sets the check passing, restarting its TTL.
func (b *Backend) passCheck(ctx context.Context, c *ttlCheck) error {
	q := &api.QueryOptions{Token: b.opts.Token}
	return b.client.Agent().UpdateTTLOpts(c.checkID, "", api.HealthPassing, q.WithContext(ctx))
}

// deregisterCheck removes the check and its service from the agent.
func (b *Backend) deregisterCheck(ctx context.Context, c *ttlCheck) error {
	q := &api.QueryOptions{Token: b.opts.Token}
	if err := b.client.Agent().ServiceDeregisterOpts(c.serviceID, q.WithContext(ctx)); err != nil {
		return wrap(fmt.Sprintf("deregister check %q", c.checkID), err)
	}
	return nil
}
