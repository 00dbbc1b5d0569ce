package app_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/berth-io/berth/internal/testutil"
)

// TestFDsFlatOverEndpointLifecycles creates, invokes and deletes endpoints
// many times over: connections to stopped instances must be closed, so
// the descriptors in use stay flat.
func TestFDsFlatOverEndpointLifecycles(t *testing.T) {
	if testing.Short() {
		t.Skip("200 endpoint lifecycles")
	}
	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	s.createModel(t, "fd", nil, "")
	s.createConfig(t, "fd", "fd", 1)

	lifecycle := func(i int) {
		t.Helper()
		name := fmt.Sprintf("fd-%d", i)
		s.createEndpoint(t, name, "fd")
		s.waitInService(t, name)
		if got, err := s.invoke(t, name, "ping"); err != nil || got == "" {
			t.Fatalf("invoke %s: %q %v", name, got, err)
		}
		if _, err := s.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String(name)}); err != nil {
			t.Fatalf("DeleteEndpoint %s: %v", name, err)
		}
		testutil.WaitFor(t, 10*time.Second, func() error {
			_, err := s.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
			if err == nil {
				return errors.New("still there")
			}
			return nil
		})
	}
	// Warm up: the first lifecycles open what is opened once (the SDK's
	// connections, the database's, the log files' directory).
	for i := range 5 {
		lifecycle(i)
	}
	before := openFDs(t)
	start := time.Now()
	for i := 5; i < 205; i++ {
		lifecycle(i)
	}
	t.Logf("200 lifecycles in %s", time.Since(start))
	const slack = 10
	var after int
	testutil.WaitFor(t, 5*time.Second, func() error {
		after = openFDs(t)
		if after > before+slack {
			return fmt.Errorf("open fds %d after 200 endpoint lifecycles, %d before", after, before)
		}
		return nil
	})
	t.Logf("open fds: %d before, %d after", before, after)
}

// cachedArtifacts lists the unpacked models in a data dir's cache.
func cachedArtifacts(t *testing.T, dataDir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dataDir, "artifacts"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "sha256-") {
			out = append(out, e.Name())
		}
	}
	return out
}

// TestArtifactCacheEviction: an unpacked model larger than the cache
// budget stays while a model uses it, and goes once the model is deleted;
// one left by an earlier run goes at start-up.
func TestArtifactCacheEviction(t *testing.T) {
	ctx := context.Background()
	bigModel := func(t *testing.T) []byte {
		return modelTarGz(t, map[string]string{"weights.bin": strings.Repeat("w", 256<<10)})
	}
	deleteAll := func(t *testing.T, s *server, name string) {
		t.Helper()
		if _, err := s.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 10*time.Second, func() error {
			if _, err := s.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)}); err == nil {
				return errors.New("endpoint still there")
			}
			return nil
		})
		if _, err := s.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String(name)}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("model deleted", func(t *testing.T) {
		cfg := testConfig(t, t.TempDir())
		cfg.Artifacts.CacheMaxBytes = 64 << 10
		s := startServer(t, cfg)
		s.upload(t, "models", "big/model.tar.gz", bigModel(t))
		s.deploy(t, "big", nil, "s3://models/big/model.tar.gz", 1)
		if got, err := s.invoke(t, "big", "x"); err != nil || got != "x" {
			t.Fatalf("invoke: %q %v", got, err)
		}
		if n := len(cachedArtifacts(t, s.dataDir)); n != 1 {
			t.Fatalf("%d cached models while the endpoint runs, want 1", n)
		}
		// Another endpoint's deletion triggers a trim: the model in use,
		// over budget as it is, stays.
		s.deploy(t, "other", nil, "", 1)
		deleteAll(t, s, "other")
		if n := len(cachedArtifacts(t, s.dataDir)); n != 1 {
			t.Fatalf("%d cached models, want the one in use", n)
		}
		deleteAll(t, s, "big")
		testutil.WaitFor(t, 10*time.Second, func() error {
			if c := cachedArtifacts(t, s.dataDir); len(c) > 0 {
				return fmt.Errorf("still cached after the model was deleted: %v", c)
			}
			return nil
		})
	})

	t.Run("at start-up", func(t *testing.T) {
		dir := t.TempDir()
		cfg := testConfig(t, dir)
		cfg.Artifacts.CacheMaxBytes = 1 << 30
		s := startServer(t, cfg)
		s.upload(t, "models", "big/model.tar.gz", bigModel(t))
		s.deploy(t, "big", nil, "s3://models/big/model.tar.gz", 1)
		deleteAll(t, s, "big")
		if n := len(cachedArtifacts(t, dir)); n != 1 {
			t.Fatalf("%d cached models within a generous budget, want 1", n)
		}
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := s.app.Shutdown(sctx); err != nil {
			t.Fatal(err)
		}
		cfg.Artifacts.CacheMaxBytes = 64 << 10
		startServer(t, cfg)
		if c := cachedArtifacts(t, dir); len(c) > 0 {
			t.Fatalf("still cached after a restart with a smaller budget: %v", c)
		}
	})
}
