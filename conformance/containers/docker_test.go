package containers

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"

	"github.com/consul-leader/consul-leader/conformance/testserver"
)

// startTimeout bounds starting a container or a cluster, and waiting until
// it serves.
const startTimeout = 2 * time.Minute

// requireDocker skips t when no Docker daemon answers, or fails it when
// testserver.RequireEnv is set to 1, so that a run meant to test against
// real servers cannot pass without them.
func requireDocker(t *testing.T) {
	t.Helper()
	if os.Getenv(testserver.RequireEnv) != "1" {
		testcontainers.SkipIfProviderIsNotHealthy(t)
		return
	}
	if err := dockerHealth(); err != nil {
		t.Fatalf("no Docker daemon: %v; %s=1 forbids skipping", err, testserver.RequireEnv)
	}
}

// dockerHealth reports whether the Docker daemon answers.
func dockerHealth() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("docker provider: %v", r)
		}
	}()
	p, err := testcontainers.ProviderDefault.GetProvider()
	if err != nil {
		return err
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return p.Health(ctx)
}

// onLoopback publishes every port the request exposes on 127.0.0.1 only,
// on a port Docker chooses, instead of on every interface of the host. It
// must come after the options that expose ports, as the modules' own do.
func onLoopback() testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error {
		bindings := network.PortMap{}
		for _, spec := range req.ExposedPorts {
			ports, err := network.ParsePortRange(spec)
			if err != nil {
				return fmt.Errorf("exposed port %q: %w", spec, err)
			}
			for p := range ports.All() {
				bindings[p] = []network.PortBinding{{HostIP: netip.AddrFrom4([4]byte{127, 0, 0, 1})}}
			}
		}
		return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			if hc.PortBindings == nil {
				hc.PortBindings = network.PortMap{}
			}
			for p, b := range bindings {
				hc.PortBindings[p] = b
			}
		})(req)
	}
}

// logTo sends testcontainers-go's messages about a container to t's log.
func logTo(t testing.TB) testcontainers.ContainerCustomizer {
	return testcontainers.WithLogger(tclog.TestLogger(t))
}

// startContext returns a context bounding a start-up, which ends with t.
func startContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	t.Cleanup(cancel)
	return ctx
}

// waitUntil calls ready every 100 ms, each time with a deadline of its own,
// until it returns nil, and fails t if that has not happened when ctx ends.
func waitUntil(ctx context.Context, t testing.TB, what string, ready func(ctx context.Context) error) {
	t.Helper()
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := ready(cctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not ready: %v", what, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopNow stops c at once (SIGKILL right after SIGTERM), as a crash would.
func stopNow(t testing.TB, c testcontainers.Container) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var zero time.Duration
	if err := c.Stop(ctx, &zero); err != nil {
		t.Fatalf("stop container: %v", err)
	}
}
