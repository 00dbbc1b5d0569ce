package artifacts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/objstore"
	"github.com/berth-io/berth/internal/objstore/disk"
	"github.com/berth-io/berth/internal/testutil"
)

// refs is a References over a set of sources and dirs the test changes.
type refs struct {
	mu      sync.Mutex
	sources []Source
	dirs    []string
}

func (r *refs) set(sources []Source, dirs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sources, r.dirs = sources, dirs
}

func (r *refs) get(context.Context) ([]Source, []string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sources, r.dirs, nil
}

// cacheEnv is a Fetcher with a budget over the embedded disk store.
type cacheEnv struct {
	store    *disk.Store
	cacheDir string
	refs     *refs
}

func newCacheEnv(t *testing.T) *cacheEnv {
	t.Helper()
	st, err := disk.Open(t.TempDir(), disk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateBucket(t.Context(), "models"); err != nil {
		t.Fatal(err)
	}
	return &cacheEnv{store: st, cacheDir: t.TempDir(), refs: &refs{}}
}

// fetcher opens a Fetcher on the env's cache, as a (re)started berth does.
func (e *cacheEnv) fetcher(t *testing.T, budget int64) *Fetcher {
	t.Helper()
	f := NewFetcher(e.store, e.cacheDir, Options{Logger: testLogger(t)})
	f.SetCache(CacheOptions{MaxBytes: budget, References: e.refs.get})
	t.Cleanup(f.Close)
	if err := f.Trim(t.Context()); err != nil {
		t.Fatal(err)
	}
	return f
}

// model uploads an archive holding size bytes and returns its source.
func (e *cacheEnv) model(t *testing.T, key string, size int64) Source {
	t.Helper()
	body := makeTar(t, ent{name: key + ".bin", size: size})
	if _, err := e.store.Put(t.Context(), "models", key, bytes.NewReader(body), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	return Source{URL: "s3://models/" + key}
}

func fetchOK(t *testing.T, f *Fetcher, src Source) string {
	t.Helper()
	dir, err := f.Fetch(t.Context(), src)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// waitGone waits for the background trim to remove dir.
func waitGone(t *testing.T, dir string) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if isDir(dir) {
			return fmt.Errorf("%s still cached", filepath.Base(dir))
		}
		return nil
	})
}

// setUsed backdates a directory's last use.
func setUsed(t *testing.T, dir string, ago time.Duration) {
	t.Helper()
	when := time.Now().Add(-ago)
	if err := os.Chtimes(dir, when, when); err != nil {
		t.Fatal(err)
	}
}

func TestCacheEvictsLeastRecentlyUsedFirst(t *testing.T) {
	e := newCacheEnv(t)
	f := e.fetcher(t, 25<<10)
	a, b, c := e.model(t, "a", 10<<10), e.model(t, "b", 10<<10), e.model(t, "c", 10<<10)
	da, db := fetchOK(t, f, a), fetchOK(t, f, b)
	setUsed(t, da, 2*time.Hour)
	setUsed(t, db, 3*time.Hour)
	// a is used again: b is now the least recently used.
	if again := fetchOK(t, f, a); again != da {
		t.Fatalf("refetch of a = %s, want %s", again, da)
	}
	// c takes the cache over 25 KiB: b goes, a and c stay.
	dc := fetchOK(t, f, c)
	waitGone(t, db)
	f.Close()
	if !isDir(da) || !isDir(dc) {
		t.Fatalf("after eviction: a cached %v, c cached %v; want both", isDir(da), isDir(dc))
	}
	if recs, _ := os.ReadDir(filepath.Join(e.cacheDir, "index")); len(recs) != 2 {
		t.Errorf("%d index records after eviction, want 2", len(recs))
	}
}

func TestCacheKeepsReferencedArtifacts(t *testing.T) {
	e := newCacheEnv(t)
	f := e.fetcher(t, 15<<10)
	byModel, byInstance, free := e.model(t, "m", 10<<10), e.model(t, "i", 10<<10), e.model(t, "f", 10<<10)
	e.refs.set([]Source{byModel, byInstance})
	dm, di := fetchOK(t, f, byModel), fetchOK(t, f, byInstance)
	// The oldest two are referenced: one by a model, one by an instance
	// (its model was deleted, the instance runs on).
	setUsed(t, dm, 3*time.Hour)
	setUsed(t, di, 2*time.Hour)
	e.refs.set([]Source{byModel}, di)
	df := fetchOK(t, f, free)
	waitGone(t, df)
	if err := f.Trim(t.Context()); err != nil {
		t.Fatal(err)
	}
	if !isDir(dm) || !isDir(di) || isDir(df) {
		t.Fatalf("model's kept %v, instance's kept %v, unreferenced kept %v", isDir(dm), isDir(di), isDir(df))
	}
	// Over budget with only referenced models: nothing more goes.
	if err := f.Trim(t.Context()); err != nil || !isDir(dm) || !isDir(di) {
		t.Fatalf("second trim: %v", err)
	}
	// The model is deleted and its instance stopped: both may go now.
	e.refs.set(nil)
	f.TrimSoon()
	waitGone(t, dm)
	f.Close()
	if !isDir(di) {
		t.Fatal("evicted more than the budget needed")
	}
}

func TestCacheTrimsAtStartup(t *testing.T) {
	e := newCacheEnv(t)
	// A first run with a generous budget caches a big model.
	f := e.fetcher(t, 1<<30)
	big := e.model(t, "big", 64<<10)
	dir := fetchOK(t, f, big)
	e.refs.set([]Source{big})
	f.Close()
	// A work directory left by a crash.
	if err := os.MkdirAll(filepath.Join(e.cacheDir, "tmp", "unpack-1", "half"), 0o755); err != nil {
		t.Fatal(err)
	}

	// Restarted with a small budget while the model still exists: kept.
	e.fetcher(t, 16<<10)
	if !isDir(dir) {
		t.Fatal("a referenced model was evicted at start-up")
	}
	if isDir(filepath.Join(e.cacheDir, "tmp")) {
		t.Error("start-up trim left the work directories")
	}
	// The model was deleted; the next start evicts its artifact.
	e.refs.set(nil)
	f = e.fetcher(t, 16<<10)
	if isDir(dir) {
		t.Fatal("an unreferenced model over the budget survived a restart")
	}
	// Fetching it again downloads it again.
	if again := fetchOK(t, f, big); again != dir || !isDir(again) {
		t.Fatalf("refetch = %s", again)
	}
}

func TestUnpackRefusedWhenDiskTooSmall(t *testing.T) {
	e := newCacheEnv(t)
	f := NewFetcher(e.store, e.cacheDir, Options{Logger: testLogger(t)})
	var free int64
	f.cache.freeBytes = func(string) (int64, bool) { return free, true }
	f.SetCache(CacheOptions{ReserveBytes: 1 << 10})

	// The archive itself does not fit: refused before anything is written.
	free = 4 << 10
	_, err := f.Fetch(t.Context(), e.model(t, "m", 8<<10))
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("Fetch = %v, want ErrNoSpace", err)
	}
	if isDir(filepath.Join(e.cacheDir, "tmp")) {
		if ents, _ := os.ReadDir(filepath.Join(e.cacheDir, "tmp")); len(ents) > 0 {
			t.Errorf("work directories after a refused fetch: %v", ents)
		}
	}

	// The archive fits, what it unpacks to (1 MiB of zeros, gzipped) does
	// not: the unpack cap is the free space and the refusal says so.
	free = 64 << 10
	body := gz(t, makeTar(t, ent{name: "zeros.bin", size: 1 << 20}))
	if _, err := e.store.Put(t.Context(), "models", "bomb.tar.gz", bytes.NewReader(body), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = f.Fetch(t.Context(), Source{URL: "s3://models/bomb.tar.gz"})
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Fetch of a model larger than the free disk = %v, want ErrNoSpace", err)
	}
	// With room, the same model unpacks.
	free = 64 << 20
	if _, err := f.Fetch(t.Context(), Source{URL: "s3://models/bomb.tar.gz"}); err != nil {
		t.Fatal(err)
	}
}
