package pgtest

import (
	"context"

	"github.com/sweeperhq/sweeper/internal/pgcluster"
)

// The throwaway cluster itself lives in internal/pgcluster, which the chaos
// harness shares (it needs a server it may restart mid-run).

func startCluster(ctx context.Context) (*pgcluster.Cluster, error) {
	return pgcluster.Start(ctx, pgcluster.Options{})
}

func findBinDir() (string, error) { return pgcluster.BinDir() }
