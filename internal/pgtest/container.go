package pgtest

import (
	"context"
	"fmt"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

// containerImage matches the PostgreSQL that CI and Debian 12 run.
const containerImage = "postgres:15"

// dockerAnswers reports whether a Docker engine is there to run a container.
func dockerAnswers(ctx context.Context) (ok bool) {
	// testcontainers panics when it finds no Docker configuration at all.
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	provider, err := testcontainers.ProviderDefault.GetProvider(testcontainers.WithLogger(tclog.NewNoopLogger()))
	if err != nil {
		return false
	}
	defer provider.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return provider.Health(ctx) == nil
}

// startContainer runs PostgreSQL in a container for the rest of the test
// process; testcontainers' reaper removes it when the process ends.
func startContainer(ctx context.Context) (string, error) {
	ctr, err := tcpostgres.Run(ctx, containerImage,
		testcontainers.WithLogger(tclog.NewNoopLogger()),
		tcpostgres.WithDatabase("ldkbackup_test"),
		tcpostgres.BasicWaitStrategies(),
	)
	if err != nil {
		_ = testcontainers.TerminateContainer(ctr) // nil-safe; a half-started one must not linger
		return "", fmt.Errorf("start %s: %w", containerImage, err)
	}
	return ctr.ConnectionString(ctx, "sslmode=disable")
}
