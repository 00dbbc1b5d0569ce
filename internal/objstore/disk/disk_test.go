package disk

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/objstore"
	"github.com/berth-io/berth/internal/objstore/objstoretest"
)

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		return openStore(t, t.TempDir())
	})
}

func TestSurvivesReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	s, err := Open(dir, Options{Logger: testLogger(t), Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBucket(ctx, "models"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "models", "xgb/model.tar.gz", strings.NewReader("weights"), objstore.PutOptions{ContentType: "application/gzip", Metadata: map[string]string{"Framework": "xgboost"}}); err != nil {
		t.Fatal(err)
	}
	// Debris of a crash in the middle of a write.
	if err := os.WriteFile(filepath.Join(dir, tmpDirName, "put-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}

	s2 := openStore(t, dir)
	rc, info, err := s2.Get(ctx, "models", "xgb/model.tar.gz")
	if err != nil {
		t.Fatalf("Get after reopen: %v", err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	if string(data) != "weights" || info.ContentType != "application/gzip" || info.Metadata["framework"] != "xgboost" || !info.LastModified.Equal(clock) {
		t.Errorf("after reopen: %q %+v", data, info)
	}
	buckets, err := s2.ListBuckets(ctx)
	if err != nil || len(buckets) != 1 || buckets[0].Name != "models" || !buckets[0].Created.Equal(clock) {
		t.Errorf("ListBuckets after reopen = %+v, %v", buckets, err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, tmpDirName)); len(left) != 0 {
		t.Errorf("temporary files left after reopen: %v", left)
	}
}

func TestGetReaderSeeks(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	if err := s.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "bkt", "k", strings.NewReader("0123456789"), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Get(ctx, "bkt", "k")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	sk, ok := rc.(io.ReadSeeker)
	if !ok {
		t.Fatal("Get reader is not an io.Seeker")
	}
	if _, err := sk.Seek(7, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(sk)
	if string(rest) != "789" {
		t.Errorf("after seek read %q, want 789 (trailer must not show)", rest)
	}
}

func TestInvalidKeys(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	if err := s.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"", strings.Repeat("k", objstore.MaxKeyLen+1), "bad\xffutf8"} {
		if _, err := s.Put(ctx, "bkt", key, strings.NewReader("x"), objstore.PutOptions{}); !errorsIs(err, objstore.ErrInvalidName) {
			t.Errorf("Put(%q) = %v, want ErrInvalidName", key, err)
		}
	}
	// Keys that look like paths are ordinary keys.
	for _, key := range []string{"..", "../../etc/passwd", "/abs/path", ".", "a/../../b", "nul\x00byte", `back\slash`} {
		if _, err := s.Put(ctx, "bkt", key, strings.NewReader(key), objstore.PutOptions{}); err != nil {
			t.Errorf("Put(%q): %v", key, err)
			continue
		}
		rc, _, err := s.Get(ctx, "bkt", key)
		if err != nil {
			t.Errorf("Get(%q): %v", key, err)
			continue
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		if string(data) != key {
			t.Errorf("Get(%q) = %q", key, data)
		}
	}
	// Nothing was written outside the bucket's directory.
	entries, err := os.ReadDir(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "bkt" && e.Name() != tmpDirName {
			t.Errorf("unexpected entry %q in the store root", e.Name())
		}
	}
}

func TestDeleteRemovesEmptyDirectories(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	if err := s.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	key := strings.Repeat("d", 100)
	if _, err := s.Put(ctx, "bkt", key, bytes.NewReader(nil), objstore.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "bkt", key); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(s.Root(), "bkt"))
	for _, e := range entries {
		if e.Name() != bucketInfoName {
			t.Errorf("left behind %q", e.Name())
		}
	}
}

func TestBucketNames(t *testing.T) {
	for _, name := range []string{"abc", "my-bucket", "my.bucket.name", "a1b", strings.Repeat("x", 63), "1-2"} {
		if err := objstore.ValidateBucketName(name); err != nil {
			t.Errorf("objstore.ValidateBucketName(%q) = %v", name, err)
		}
	}
	for _, name := range []string{"ab", strings.Repeat("x", 64), "Abc", "a_b", ".ab", "ab.", "-ab", "ab-", "a..b", "10.0.0.1", "a/b", "a\x00b", tmpDirName, "..."} {
		if err := objstore.ValidateBucketName(name); err == nil {
			t.Errorf("objstore.ValidateBucketName(%q) accepted", name)
		}
	}
}

func errorsIs(err, target error) bool {
	for err != nil {
		if err == target {
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}
