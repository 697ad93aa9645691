package pgtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// containerImage is the server used when Docker is available; it matches the
// major version production runs.
const containerImage = "postgres:16-alpine"

// dockerProbeTimeout bounds how long a missing Docker engine may delay the
// fallback to local binaries.
const dockerProbeTimeout = 2 * time.Second

// discover finds or starts a server and returns its admin URL. Anything it
// starts is registered for shutdown.
func (s *server) discover(ctx context.Context) (string, error) {
	if u := os.Getenv(EnvDatabaseURL); u != "" {
		// An explicit URL is a decision; falling through to another server
		// would hide a typo, so it is returned as is and failures are loud.
		return u, nil
	}
	return s.startServer(ctx, dockerAvailable)
}

// startServer tries a container, then a local cluster. dockerUp is a
// parameter so tests can force the local path.
func (s *server) startServer(ctx context.Context, dockerUp func(context.Context) error) (string, error) {
	dockerErr := dockerUp(ctx)
	if dockerErr == nil {
		u, stop, err := startContainer(ctx)
		if err != nil {
			return "", fmt.Errorf("a Docker engine answers but the %s container did not start: %w", containerImage, err)
		}
		s.onShutdown(stop)
		return u, nil
	}

	c, err := startCluster(ctx)
	if err == nil {
		s.onShutdown(c.Stop)
		return c.AdminURL(), nil
	}
	return "", noServerError(dockerErr, err)
}

// noServerError is the single failure every storage test reports when no
// option worked; it names all three so the reader can pick one.
func noServerError(dockerErr, clusterErr error) error {
	return fmt.Errorf("no PostgreSQL server for tests; provide one of:\n"+
		"  1. %s=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable (an admin-capable URL; not set)\n"+
		"  2. a running Docker engine, for a %s container (%v)\n"+
		"  3. PostgreSQL server binaries (initdb, postgres) in PATH or /usr/lib/postgresql/*/bin (%v)",
		EnvDatabaseURL, containerImage, dockerErr, clusterErr)
}

// dockerAvailable reports, quickly, whether a Docker engine answers.
// testcontainers has panicked in the past when no engine is configured, so a
// panic counts as "not available" rather than crashing the test binary.
func dockerAvailable(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("testcontainers panicked probing Docker: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, dockerProbeTimeout)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("docker: %w", err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("docker ping: %w", err)
	}
	return nil
}

func startContainer(ctx context.Context) (adminURL string, stop func(context.Context) error, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("testcontainers panicked: %v", r)
		}
	}()
	ctr, err := tcpostgres.Run(ctx, containerImage,
		tcpostgres.WithDatabase("postgres"),
		tcpostgres.WithUsername("postgres"),
		tcpostgres.WithPassword("postgres"),
		tcpostgres.BasicWaitStrategies(),
	)
	if err != nil {
		return "", nil, errors.Join(err, testcontainers.TerminateContainer(ctr))
	}
	u, err := ctr.ConnectionString(ctx, "sslmode=disable")
	if err != nil {
		return "", nil, errors.Join(err, testcontainers.TerminateContainer(ctr))
	}
	return u, func(context.Context) error { return testcontainers.TerminateContainer(ctr) }, nil
}
