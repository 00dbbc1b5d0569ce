package artifacts

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/objstore"
	"github.com/berth-io/berth/internal/testutil"
)

// memStore is a minimal in-memory objstore.Store for these tests, until the
// real disk store exists. It counts Gets and can hold them at a gate.
type memStore struct {
	mu      sync.Mutex
	objects map[string]map[string][]byte
	gets    int
	gate    chan struct{} // if set, Get waits for it to close
}

var _ objstore.Store = (*memStore)(nil)

func newMemStore() *memStore { return &memStore{objects: map[string]map[string][]byte{}} }

func (m *memStore) put(bucket, key string, body []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.objects[bucket] == nil {
		m.objects[bucket] = map[string][]byte{}
	}
	m.objects[bucket][key] = body
}

func (m *memStore) getCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gets
}

func (m *memStore) info(bucket, key string) (objstore.ObjectInfo, []byte, error) {
	b, ok := m.objects[bucket]
	if !ok {
		return objstore.ObjectInfo{}, nil, objstore.ErrNoSuchBucket
	}
	body, ok := b[key]
	if !ok {
		return objstore.ObjectInfo{}, nil, fmt.Errorf("%s/%s: %w", bucket, key, objstore.ErrNoSuchKey)
	}
	sum := md5.Sum(body)
	return objstore.ObjectInfo{Bucket: bucket, Key: key, Size: int64(len(body)), ETag: `"` + hex.EncodeToString(sum[:]) + `"`}, body, nil
}

func (m *memStore) CreateBucket(_ context.Context, bucket string) error {
	m.put(bucket, "", nil)
	m.mu.Lock()
	delete(m.objects[bucket], "")
	m.mu.Unlock()
	return nil
}
func (m *memStore) DeleteBucket(context.Context, string) error { return errors.ErrUnsupported }
func (m *memStore) ListBuckets(context.Context) ([]objstore.BucketInfo, error) {
	return nil, errors.ErrUnsupported
}
func (m *memStore) BucketExists(_ context.Context, bucket string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.objects[bucket]
	return ok, nil
}
func (m *memStore) Put(_ context.Context, bucket, key string, body io.Reader, _ objstore.PutOptions) (objstore.ObjectInfo, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return objstore.ObjectInfo{}, err
	}
	m.put(bucket, key, b)
	return m.Head(context.Background(), bucket, key)
}
func (m *memStore) Get(ctx context.Context, bucket, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	m.mu.Lock()
	m.gets++
	gate := m.gate
	info, body, err := m.info(bucket, key)
	m.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, objstore.ObjectInfo{}, ctx.Err()
		}
	}
	if err != nil {
		return nil, objstore.ObjectInfo{}, err
	}
	return io.NopCloser(bytes.NewReader(body)), info, nil
}
func (m *memStore) Head(_ context.Context, bucket, key string) (objstore.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	info, _, err := m.info(bucket, key)
	return info, err
}
func (m *memStore) Delete(context.Context, string, string) error { return errors.ErrUnsupported }
func (m *memStore) List(_ context.Context, bucket string, opts objstore.ListOptions) (objstore.ListResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objects[bucket]
	if !ok {
		return objstore.ListResult{}, objstore.ErrNoSuchBucket
	}
	var keys []string
	for k := range b {
		if strings.HasPrefix(k, opts.Prefix) && k > opts.StartAfter {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	var res objstore.ListResult
	if opts.MaxKeys > 0 && len(keys) > opts.MaxKeys {
		keys, res.IsTruncated = keys[:opts.MaxKeys], true
	}
	for _, k := range keys {
		info, _, _ := m.info(bucket, k)
		res.Objects = append(res.Objects, info)
	}
	return res, nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newTestFetcher(t *testing.T, store objstore.Store) (*Fetcher, string) {
	t.Helper()
	cache := t.TempDir()
	return NewFetcher(store, cache, Options{Logger: testLogger(t), AllowedFileDirs: []string{os.TempDir()}}), cache
}

func readIn(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFetchTarGz(t *testing.T) {
	ctx := t.Context()
	store := newMemStore()
	archive := gz(t, makeTar(t, ent{name: "model.json", body: "{}"}, ent{name: "code/inference.py", body: "x", mode: 0o755}))
	store.put("b", "models/a/model.tar.gz", archive)
	f, cache := newTestFetcher(t, store)

	dir, err := f.Fetch(ctx, Source{URL: "s3://b/models/a/model.tar.gz"})
	if err != nil {
		t.Fatal(err)
	}
	if got := readIn(t, dir, "model.json"); got != "{}" {
		t.Errorf("model.json = %q", got)
	}
	if !strings.HasPrefix(filepath.Base(dir), "sha256-") || filepath.Dir(dir) != cache {
		t.Errorf("dir = %s, want %s/sha256-<hex>", dir, cache)
	}

	// The same source again: found through the index, not downloaded.
	again, err := f.Fetch(ctx, Source{URL: "s3://b/models/a/model.tar.gz"})
	if err != nil || again != dir {
		t.Fatalf("second Fetch = %q, %v; want %q", again, err, dir)
	}
	if n := store.getCount(); n != 1 {
		t.Errorf("store Gets = %d, want 1", n)
	}

	// The same bytes under another key share the directory.
	store.put("b", "models/copy/model.tar.gz", archive)
	shared, err := f.Fetch(ctx, Source{URL: "s3://b/models/copy/model.tar.gz"})
	if err != nil || shared != dir {
		t.Fatalf("Fetch of a copy = %q, %v; want %q", shared, err, dir)
	}

	// Other content gets its own directory.
	store.put("b", "models/other.tar.gz", makeTar(t, ent{name: "model.json", body: "[]"}))
	other, err := f.Fetch(ctx, Source{URL: "s3://b/models/other.tar.gz"})
	if err != nil || other == dir {
		t.Fatalf("Fetch of other content = %q, %v", other, err)
	}
	if got := readIn(t, other, "model.json"); got != "[]" {
		t.Errorf("other model.json = %q", got)
	}

	// A replaced object is downloaded again.
	store.put("b", "models/a/model.tar.gz", makeTar(t, ent{name: "model.json", body: "new"}))
	replaced, err := f.Fetch(ctx, Source{URL: "s3://b/models/a/model.tar.gz"})
	if err != nil || replaced == dir {
		t.Fatalf("Fetch after replace = %q, %v", replaced, err)
	}
	if got := readIn(t, replaced, "model.json"); got != "new" {
		t.Errorf("model.json after replace = %q", got)
	}
	assertNoWork(t, cache)
}

// assertNoWork checks that no work directory was left behind.
func assertNoWork(t *testing.T, cache string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Join(cache, "tmp"))
	for _, e := range ents {
		t.Errorf("left behind %s", e.Name())
	}
}

func TestFetchPrefix(t *testing.T) {
	ctx := t.Context()
	store := newMemStore()
	store.put("b", "llm/", nil)
	store.put("b", "llm/config.json", []byte("{}"))
	store.put("b", "llm/weights/", nil)
	store.put("b", "llm/weights/empty/", nil)
	store.put("b", "llm/weights/part-0.safetensors", []byte("w0"))
	store.put("b", "llm/weights/part-1.safetensors", []byte("w1"))
	store.put("b", "llm-v2/config.json", []byte("not mine"))
	f, cache := newTestFetcher(t, store)

	dir, err := f.Fetch(ctx, Source{URL: "s3://b/llm", Prefix: true})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			rel += "/"
		}
		got = append(got, filepath.ToSlash(rel))
		return err
	})
	want := []string{"./", "config.json", "weights/", "weights/empty/", "weights/part-0.safetensors", "weights/part-1.safetensors"}
	if !slices.Equal(got, want) {
		t.Errorf("tree = %q, want %q", got, want)
	}
	if s := readIn(t, dir, "weights/part-1.safetensors"); s != "w1" {
		t.Errorf("part-1 = %q", s)
	}
	gets := store.getCount()

	again, err := f.Fetch(ctx, Source{URL: "s3://b/llm/", Prefix: true})
	if err != nil || again != dir {
		t.Fatalf("second Fetch = %q, %v; want %q", again, err, dir)
	}
	if n := store.getCount(); n != gets {
		t.Errorf("second Fetch made %d Gets", n-gets)
	}

	// The same files under another prefix share the directory.
	for _, k := range []string{"config.json", "weights/", "weights/empty/", "weights/part-0.safetensors", "weights/part-1.safetensors"} {
		body := []byte(nil)
		if !strings.HasSuffix(k, "/") {
			body = []byte(readIn(t, dir, k))
		}
		store.put("b", "copy/"+k, body)
	}
	shared, err := f.Fetch(ctx, Source{URL: "s3://b/copy/", Prefix: true})
	if err != nil || shared != dir {
		t.Fatalf("Fetch of a copy = %q, %v; want %q", shared, err, dir)
	}
	assertNoWork(t, cache)
}

func TestFetchPrefixErrors(t *testing.T) {
	tests := []struct {
		name    string
		keys    []string
		url     string
		opts    Options
		wantErr error
		wantMsg string
	}{
		{name: "escaping key", keys: []string{"p/ok", "p/../x"}, wantErr: ErrUnsafeEntry, wantMsg: `model artifact s3://b/p/: entry "p/../x" escapes the model directory`},
		{name: "double slash", keys: []string{"p//x"}, wantErr: ErrUnsafeEntry},
		{name: "file and folder clash", keys: []string{"p/a", "p/a/b"}, wantErr: ErrUnsafeEntry, wantMsg: `entry "p/a/b" is inside "a", which is not a directory`},
		{name: "empty prefix", keys: []string{"other/x"}, wantErr: objstore.ErrNoSuchKey},
		{name: "only folder markers", keys: []string{"p/", "p/d/"}, wantErr: ErrNotFound},
		{name: "missing bucket", keys: []string{"p/x"}, url: "s3://nobucket/p/", wantErr: objstore.ErrNoSuchBucket},
		{name: "too many objects", keys: []string{"p/1", "p/2", "p/3"}, opts: Options{MaxFiles: 2}, wantErr: ErrTooLarge},
		{name: "too many bytes", keys: []string{"p/1", "p/2", "p/3"}, opts: Options{MaxUnpackedBytes: 5}, wantErr: ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := newMemStore()
			for _, k := range tt.keys {
				store.put("b", k, []byte(k))
			}
			tt.opts.Logger = testLogger(t)
			cache := t.TempDir()
			f := NewFetcher(store, cache, tt.opts)
			u := tt.url
			if u == "" {
				u = "s3://b/p/"
			}
			_, err := f.Fetch(t.Context(), Source{URL: u, Prefix: true})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Fetch error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Fetch error = %q, want it to contain %q", err, tt.wantMsg)
			}
			assertNoWork(t, cache)
			if m, _ := filepath.Glob(filepath.Join(cache, "sha256-*")); len(m) > 0 {
				t.Errorf("failed Fetch left %v", m)
			}
		})
	}
}

func TestFetchErrors(t *testing.T) {
	store := newMemStore()
	store.put("b", "notar.tar.gz", []byte("this is not an archive at all, just some text"))
	store.put("b", "empty.tar.gz", nil)
	store.put("b", "evil.tar.gz", gz(t, makeTar(t, ent{name: "ok", body: "x"}, ent{name: "../x", body: "evil"})))
	tests := []struct {
		url     string
		wantErr []error
		wantMsg string
	}{
		{url: "s3://b/missing.tar.gz", wantErr: []error{objstore.ErrNoSuchKey, ErrNotFound}, wantMsg: "model artifact s3://b/missing.tar.gz: "},
		{url: "s3://nobucket/m.tar.gz", wantErr: []error{objstore.ErrNoSuchBucket, ErrNotFound}},
		{url: "s3://b/notar.tar.gz", wantErr: []error{ErrNotArchive}, wantMsg: "model artifact s3://b/notar.tar.gz: not a tar or tar.gz archive"},
		{url: "s3://b/empty.tar.gz", wantErr: []error{ErrNotArchive}, wantMsg: "empty"},
		{url: "s3://b/evil.tar.gz", wantErr: []error{ErrUnsafeEntry}, wantMsg: `model artifact s3://b/evil.tar.gz: entry "../x" escapes the model directory`},
		{url: "s3://b/models/", wantMsg: "names a folder"},
		{url: "https://example.com/m.tar.gz", wantMsg: "must start with s3:// or file://"},
		{url: "file://host/m.tar.gz", wantMsg: "only local files"},
		{url: "file:relative/m.tar.gz", wantMsg: "absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			f, cache := newTestFetcher(t, store)
			_, err := f.Fetch(t.Context(), Source{URL: tt.url})
			if err == nil {
				t.Fatal("Fetch succeeded")
			}
			for _, want := range tt.wantErr {
				if !errors.Is(err, want) {
					t.Errorf("Fetch error = %v, want %v", err, want)
				}
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Fetch error = %q, want it to contain %q", err, tt.wantMsg)
			}
			assertNoWork(t, cache)
			if m, _ := filepath.Glob(filepath.Join(cache, "sha256-*")); len(m) > 0 {
				t.Errorf("failed Fetch left %v", m)
			}
		})
	}
}

func TestCheck(t *testing.T) {
	store := newMemStore()
	store.put("b", "m.tar.gz", gz(t, makeTar(t, ent{name: "a", body: "x"})))
	store.put("b", "empty.tar.gz", nil)
	store.put("b", "p/", nil)
	store.put("b", "p/sub/", nil)
	store.put("b", "p/sub/w.bin", []byte("w"))
	store.put("b", "markers/", nil)
	tmp := t.TempDir()
	tarPath := filepath.Join(tmp, "m.tar.gz")
	if err := os.WriteFile(tarPath, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		src     Source
		wantErr error // nil: Check passes
	}{
		{src: Source{URL: "s3://b/m.tar.gz"}},
		{src: Source{URL: "s3://b/p/", Prefix: true}},
		{src: Source{URL: "s3://b/p", Prefix: true}},
		{src: Source{URL: fileURL(tarPath)}},
		{src: Source{URL: fileURL(tmp)}},
		{src: Source{URL: fileURL(tmp), Prefix: true}},
		{src: Source{URL: "s3://b/missing.tar.gz"}, wantErr: objstore.ErrNoSuchKey},
		{src: Source{URL: "s3://b/empty.tar.gz"}, wantErr: ErrNotArchive},
		{src: Source{URL: "s3://b/markers/", Prefix: true}, wantErr: ErrNotFound},
		{src: Source{URL: "s3://b/nothing/", Prefix: true}, wantErr: ErrNotFound},
		{src: Source{URL: fileURL(filepath.Join(tmp, "missing.tar.gz"))}, wantErr: fs.ErrNotExist},
		{src: Source{URL: fileURL(filepath.Join(tmp, "missing.tar.gz"))}, wantErr: ErrNotFound},
	}
	f, cache := newTestFetcher(t, store)
	for _, tt := range tests {
		err := f.Check(t.Context(), tt.src)
		if tt.wantErr == nil && err != nil || !errors.Is(err, tt.wantErr) {
			t.Errorf("Check(%+v) = %v, want %v", tt.src, err, tt.wantErr)
		}
	}
	if n := store.getCount(); n != 0 {
		t.Errorf("Check downloaded %d objects", n)
	}
	if ents, _ := os.ReadDir(cache); len(ents) != 0 {
		t.Errorf("Check wrote to the cache")
	}
}

func fileURL(p string) string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(p)}).String()
}

func TestFetchFile(t *testing.T) {
	ctx := t.Context()
	f, cache := newTestFetcher(t, newMemStore())
	src := t.TempDir()
	tarPath := filepath.Join(src, "my model.tar.gz") // a space, escaped in the URL
	if err := os.WriteFile(tarPath, gz(t, makeTar(t, ent{name: "m.txt", body: "local"})), 0o644); err != nil {
		t.Fatal(err)
	}

	dir, err := f.Fetch(ctx, Source{URL: fileURL(tarPath)})
	if err != nil {
		t.Fatal(err)
	}
	if got := readIn(t, dir, "m.txt"); got != "local" {
		t.Errorf("m.txt = %q", got)
	}
	if filepath.Dir(dir) != cache {
		t.Errorf("unpacked into %s, want under %s", dir, cache)
	}
	again, err := f.Fetch(ctx, Source{URL: fileURL(tarPath)})
	if err != nil || again != dir {
		t.Errorf("second Fetch = %q, %v; want %q", again, err, dir)
	}

	// A directory is used in place.
	modelDir := filepath.Join(src, "unpacked")
	if err := os.Mkdir(modelDir, 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := f.Fetch(ctx, Source{URL: fileURL(modelDir)})
	if err != nil || got != modelDir {
		t.Errorf("Fetch of a directory = %q, %v; want %q", got, err, modelDir)
	}
	if _, err := f.Fetch(ctx, Source{URL: fileURL(tarPath), Prefix: true}); err == nil {
		t.Error("Fetch of a file as a prefix succeeded")
	}
	_, err = f.Fetch(ctx, Source{URL: fileURL(filepath.Join(src, "missing.tar.gz"))})
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrNotFound) {
		t.Errorf("Fetch of a missing file = %v, want fs.ErrNotExist and ErrNotFound", err)
	}
}

func TestFetchCoalesces(t *testing.T) {
	store := newMemStore()
	store.put("b", "m.tar.gz", gz(t, makeTar(t, ent{name: "a", body: "x"})))
	store.gate = make(chan struct{})
	f, _ := newTestFetcher(t, store)

	const n = 8
	src := Source{URL: "s3://b/m.tar.gz"}
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dirs[i], errs[i] = f.Fetch(t.Context(), src) })
	}
	key := "s3\x00b\x00m.tar.gz\x00false"
	testutil.WaitFor(t, 5*time.Second, func() error {
		if w := f.flight.waiting(key); w != n-1 {
			return fmt.Errorf("%d callers waiting", w)
		}
		return nil
	})
	close(store.gate)
	wg.Wait()
	for i := range n {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Errorf("Fetch %d = %q, %v; want %q", i, dirs[i], errs[i], dirs[0])
		}
	}
	if g := store.getCount(); g != 1 {
		t.Errorf("store Gets = %d, want 1", g)
	}
}

func TestFetchLeaderCancelled(t *testing.T) {
	store := newMemStore()
	store.put("b", "m.tar.gz", gz(t, makeTar(t, ent{name: "a", body: "x"})))
	store.gate = make(chan struct{})
	f, _ := newTestFetcher(t, store)
	src := Source{URL: "s3://b/m.tar.gz"}
	key := "s3\x00b\x00m.tar.gz\x00false"

	leaderCtx, cancel := context.WithCancel(t.Context())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := f.Fetch(leaderCtx, src)
		leaderErr <- err
	}()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if store.getCount() != 1 {
			return errors.New("leader has not reached Get")
		}
		return nil
	})
	type result struct {
		dir string
		err error
	}
	follower := make(chan result, 1)
	go func() {
		dir, err := f.Fetch(t.Context(), src)
		follower <- result{dir, err}
	}()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if f.flight.waiting(key) != 1 {
			return errors.New("follower not waiting")
		}
		return nil
	})
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader error = %v, want context.Canceled", err)
	}
	close(store.gate) // let the follower's own attempt through
	r := <-follower
	if r.err != nil {
		t.Fatalf("follower: %v", r.err)
	}
	if got := readIn(t, r.dir, "a"); got != "x" {
		t.Errorf("a = %q", got)
	}
}

func TestSweep(t *testing.T) {
	ctx := t.Context()
	store := newMemStore()
	store.put("b", "keep.tar.gz", makeTar(t, ent{name: "k", body: "1"}))
	store.put("b", "drop.tar.gz", makeTar(t, ent{name: "d", body: "2"}))
	f, cache := newTestFetcher(t, store)
	keep, err := f.Fetch(ctx, Source{URL: "s3://b/keep.tar.gz"})
	if err != nil {
		t.Fatal(err)
	}
	drop, err := f.Fetch(ctx, Source{URL: "s3://b/drop.tar.gz"})
	if err != nil {
		t.Fatal(err)
	}
	// A work directory left by a crash.
	if err := os.MkdirAll(filepath.Join(cache, "tmp", "unpack-123", "half"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.Sweep(map[string]bool{keep: true}); err != nil {
		t.Fatal(err)
	}
	if !isDir(keep) || isDir(drop) {
		t.Errorf("after Sweep: keep exists %v, drop exists %v", isDir(keep), isDir(drop))
	}
	if isDir(filepath.Join(cache, "tmp")) {
		t.Error("Sweep left the work directories")
	}
	if idx, _ := os.ReadDir(filepath.Join(cache, "index")); len(idx) != 1 {
		t.Errorf("index has %d entries after Sweep, want 1", len(idx))
	}
	gets := store.getCount()
	if again, err := f.Fetch(ctx, Source{URL: "s3://b/drop.tar.gz"}); err != nil || again != drop {
		t.Errorf("Fetch after Sweep = %q, %v; want %q", again, err, drop)
	}
	if store.getCount() != gets+1 {
		t.Error("swept model was not downloaded again")
	}
}

// Two Fetchers on one cache directory (two berth processes) racing to
// install the same content both end up with the one directory.
func TestFetchSharedCacheRace(t *testing.T) {
	store := newMemStore()
	archive := gz(t, makeTar(t, ent{name: "a", body: "x"}))
	store.put("b", "one.tar.gz", archive)
	store.put("b", "two.tar.gz", archive)
	store.gate = make(chan struct{})
	cache := t.TempDir()
	// A work directory left by a crash must not be mistaken for a model.
	if err := os.MkdirAll(filepath.Join(cache, "tmp", "unpack-crashed", "a"), 0o755); err != nil {
		t.Fatal(err)
	}
	f1 := NewFetcher(store, cache, Options{Logger: testLogger(t)})
	f2 := NewFetcher(store, cache, Options{Logger: testLogger(t)})

	var dir1, dir2 string
	var err1, err2 error
	var wg sync.WaitGroup
	wg.Go(func() { dir1, err1 = f1.Fetch(t.Context(), Source{URL: "s3://b/one.tar.gz"}) })
	wg.Go(func() { dir2, err2 = f2.Fetch(t.Context(), Source{URL: "s3://b/two.tar.gz"}) })
	testutil.WaitFor(t, 5*time.Second, func() error {
		if n := store.getCount(); n != 2 {
			return fmt.Errorf("%d Gets started", n)
		}
		return nil
	})
	close(store.gate)
	wg.Wait()
	if err1 != nil || err2 != nil || dir1 != dir2 {
		t.Fatalf("Fetches = (%q, %v), (%q, %v); want one shared directory", dir1, err1, dir2, err2)
	}
	if got := readIn(t, dir1, "a"); got != "x" {
		t.Errorf("a = %q", got)
	}
	ents, _ := os.ReadDir(filepath.Join(cache, "tmp"))
	if len(ents) != 1 || ents[0].Name() != "unpack-crashed" {
		t.Errorf("work directories after Fetch = %v, want only the crashed one", ents)
	}
}

// waiting reports how many callers are waiting on the in-flight call for
// key.
func (g *flight) waiting(key string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if c, ok := g.calls[key]; ok {
		return c.waiters
	}
	return 0
}
