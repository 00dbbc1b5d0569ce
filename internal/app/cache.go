package app

import (
	"context"
	"path/filepath"

	"github.com/berth-io/berth/internal/artifacts"
)

// defaultCacheShare is the share of the data dir's free disk the artifact
// cache may fill when the config sets no budget.
const defaultCacheShare = 4 // one quarter

// startArtifactCache gives the artifact cache its budget and references
// and trims it to the budget, before any endpoint is restored. A failed
// trim is logged: it costs disk space, not service.
func (a *App) startArtifactCache(ctx context.Context, fetcher *artifacts.Fetcher, dataDir string) {
	a.fetcher = fetcher
	budget := a.cfg.Artifacts.CacheMaxBytes
	if budget == 0 {
		free, ok := artifacts.FreeBytes(filepath.Join(dataDir, "artifacts"))
		if ok {
			budget = free / defaultCacheShare
		} else {
			budget = artifacts.DefaultMaxBytes
		}
	}
	a.fetcher.SetCache(artifacts.CacheOptions{
		MaxBytes: budget,
		References: func(ctx context.Context) ([]artifacts.Source, []string, error) {
			sources, err := a.cp.ArtifactSources(ctx)
			if err != nil {
				return nil, nil, err
			}
			return sources, a.runtime.ModelDirs(), nil
		},
	})
	if err := a.fetcher.Trim(ctx); err != nil {
		a.logger.Warn("artifact cache", "err", err)
	}
	a.logger.Info("artifact cache", "budget_bytes", budget)
}
