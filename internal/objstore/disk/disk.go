// Package disk is the embedded object store: an objstore.Store kept in a
// directory on the local disk (the data dir's objects/), durable across
// restarts.
//
// Layout under the root:
//
//	.tmp/                 files being written; renamed into place when complete
//	<bucket>/bucket.json  the bucket's creation time
//	<bucket>/c<chunk>/…   directories named after 32-byte chunks of keys
//	<bucket>/…/o<chunk>   one file per object: its bytes, then a JSON trailer
//	                      with key, size, ETag, content type, user metadata
//	                      and modification time
//
// Keys are encoded (see keyComponents), never used as paths, so no key can
// name a file outside its bucket. A Put writes a temporary file, syncs it
// and renames it over the old object, so readers see the old or the new
// object and a crash leaves one of them. One process owns a root at a time.
package disk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-io/berth/internal/fsutil"
	"github.com/berth-io/berth/internal/objstore"
)

const (
	tmpDirName     = ".tmp"
	bucketInfoName = "bucket.json"
)

// Options tunes a Store. The zero value is ready to use.
type Options struct {
	// Logger receives warnings about unexpected files and failed
	// clean-ups. Nil discards them.
	Logger *slog.Logger
	// Now is the clock that stamps LastModified and bucket creation
	// times. Nil means time.Now.
	Now func() time.Time
}

// Store is a disk-backed objstore.Store. It is safe for concurrent use.
type Store struct {
	root   string
	tmp    string
	logger *slog.Logger
	now    func() time.Time

	// buckets serialises bucket creation and deletion (held exclusively)
	// against object operations (held shared).
	buckets sync.RWMutex
}

var _ objstore.Store = (*Store)(nil)

// Open opens the store rooted at dir, creating the directory if needed and
// removing temporary files left by a previous process.
func Open(dir string, opts Options) (*Store, error) {
	if dir == "" {
		return nil, errors.New("open object store: empty root directory")
	}
	root, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open object store: %w", err)
	}
	s := &Store{
		root:   root,
		tmp:    filepath.Join(root, tmpDirName),
		logger: opts.Logger,
		now:    opts.Now,
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if err := os.MkdirAll(s.tmp, 0o755); err != nil {
		return nil, fmt.Errorf("open object store: %w", err)
	}
	leftovers, err := os.ReadDir(s.tmp)
	if err != nil {
		return nil, fmt.Errorf("open object store: %w", err)
	}
	for _, e := range leftovers {
		if err := os.RemoveAll(filepath.Join(s.tmp, e.Name())); err != nil {
			s.logger.Warn("cannot remove leftover temporary file", "name", e.Name(), "err", err)
		}
	}
	return s, nil
}

// Root returns the directory the store keeps its files in.
func (s *Store) Root() string { return s.root }

func (s *Store) bucketDir(bucket string) string { return filepath.Join(s.root, bucket) }

type bucketInfo struct {
	Created time.Time `json:"created"`
}

// CreateBucket creates an empty bucket.
func (s *Store) CreateBucket(ctx context.Context, bucket string) error {
	if err := objstore.ValidateBucketName(bucket); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	s.buckets.Lock()
	defer s.buckets.Unlock()

	dir := s.bucketDir(bucket)
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create bucket %q: %w", bucket, objstore.ErrBucketExists)
		}
		return fmt.Errorf("create bucket %q: %w", bucket, err)
	}
	data, err := json.Marshal(bucketInfo{Created: s.now().UTC()})
	if err != nil {
		return fmt.Errorf("create bucket %q: %w", bucket, err)
	}
	if err := s.writeFileAtomic(filepath.Join(dir, bucketInfoName), data); err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("create bucket %q: %w", bucket, err)
	}
	if err := fsutil.SyncDir(s.root); err != nil {
		return fmt.Errorf("create bucket %q: %w", bucket, err)
	}
	return nil
}

// DeleteBucket deletes an empty bucket.
func (s *Store) DeleteBucket(ctx context.Context, bucket string) error {
	if err := objstore.ValidateBucketName(bucket); err != nil {
		return fmt.Errorf("delete bucket %q: %w", bucket, objstore.ErrNoSuchBucket)
	}
	s.buckets.Lock()
	defer s.buckets.Unlock()

	dir := s.bucketDir(bucket)
	if ok, err := isDir(dir); err != nil {
		return fmt.Errorf("delete bucket %q: %w", bucket, err)
	} else if !ok {
		return fmt.Errorf("delete bucket %q: %w", bucket, objstore.ErrNoSuchBucket)
	}
	res, err := s.list(ctx, bucket, objstore.ListOptions{MaxKeys: 1})
	if err != nil {
		return fmt.Errorf("delete bucket %q: %w", bucket, err)
	}
	if len(res.Objects) > 0 {
		return fmt.Errorf("delete bucket %q: %w", bucket, objstore.ErrBucketNotEmpty)
	}
	// Move the directory aside first so the bucket disappears at once,
	// even if removing what is left of its tree fails half way.
	trash, err := os.MkdirTemp(s.tmp, "bucket-")
	if err != nil {
		return fmt.Errorf("delete bucket %q: %w", bucket, err)
	}
	if err := os.Rename(dir, filepath.Join(trash, bucket)); err != nil {
		_ = os.Remove(trash)
		return fmt.Errorf("delete bucket %q: %w", bucket, err)
	}
	if err := fsutil.SyncDir(s.root); err != nil {
		return fmt.Errorf("delete bucket %q: %w", bucket, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		s.logger.Warn("cannot remove deleted bucket's files", "bucket", bucket, "err", err)
	}
	return nil
}

// ListBuckets returns the buckets sorted by name.
func (s *Store) ListBuckets(ctx context.Context) ([]objstore.BucketInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.buckets.RLock()
	defer s.buckets.RUnlock()

	entries, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list buckets: %w", err)
	}
	var out []objstore.BucketInfo
	for _, e := range entries {
		if !e.IsDir() || objstore.ValidateBucketName(e.Name()) != nil {
			continue
		}
		out = append(out, objstore.BucketInfo{Name: e.Name(), Created: s.bucketCreated(e)})
	}
	slices.SortFunc(out, func(a, b objstore.BucketInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// bucketCreated reads a bucket's creation time, falling back to the
// directory's modification time.
func (s *Store) bucketCreated(e fs.DirEntry) time.Time {
	data, err := os.ReadFile(filepath.Join(s.root, e.Name(), bucketInfoName))
	if err == nil {
		var bi bucketInfo
		if err := json.Unmarshal(data, &bi); err == nil && !bi.Created.IsZero() {
			return bi.Created
		}
	}
	if fi, err := e.Info(); err == nil {
		return fi.ModTime().UTC()
	}
	return time.Time{}
}

// BucketExists reports whether the bucket exists. An invalid name is a
// bucket that does not exist.
func (s *Store) BucketExists(ctx context.Context, bucket string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	if objstore.ValidateBucketName(bucket) != nil {
		return false, nil
	}
	s.buckets.RLock()
	defer s.buckets.RUnlock()
	return isDir(s.bucketDir(bucket))
}

// checkBucket returns ErrNoSuchBucket unless the bucket exists. The
// caller holds s.buckets.
func (s *Store) checkBucket(bucket string) error {
	if objstore.ValidateBucketName(bucket) != nil {
		return fmt.Errorf("bucket %q: %w", bucket, objstore.ErrNoSuchBucket)
	}
	ok, err := isDir(s.bucketDir(bucket))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("bucket %q: %w", bucket, objstore.ErrNoSuchBucket)
	}
	return nil
}

func isDir(path string) (bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return fi.IsDir(), nil
}

// writeFileAtomic writes a small file through a synced temporary file.
func (s *Store) writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(s.tmp, "file-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return fsutil.SyncDir(filepath.Dir(path))
}
