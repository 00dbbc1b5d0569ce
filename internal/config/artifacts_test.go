package config

import "testing"

func TestArtifactsCacheBudget(t *testing.T) {
	cfg := Default()
	if err := Parse(&cfg, []byte("artifacts:\n  cache_max_bytes: 1073741824\n")); err != nil {
		t.Fatal(err)
	}
	if cfg.Artifacts.CacheMaxBytes != 1<<30 {
		t.Fatalf("cache_max_bytes = %d", cfg.Artifacts.CacheMaxBytes)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg.Artifacts.CacheMaxBytes = -1
	if err := cfg.Validate(); err == nil {
		t.Fatal("a negative cache budget passed validation")
	}
	if Default().Artifacts.CacheMaxBytes != 0 {
		t.Fatal("the default budget is not the free-disk share")
	}
}
