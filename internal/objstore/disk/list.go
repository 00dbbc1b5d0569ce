package disk

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/berth-io/berth/internal/objstore"
)

// List returns objects of the bucket in ascending byte order of their keys.
// Only the directories whose keys can match the prefix and follow
// StartAfter are read. The ObjectInfo values carry every attribute,
// metadata included.
func (s *Store) List(ctx context.Context, bucket string, opts objstore.ListOptions) (objstore.ListResult, error) {
	s.buckets.RLock()
	defer s.buckets.RUnlock()
	if err := s.checkBucket(bucket); err != nil {
		return objstore.ListResult{}, fmt.Errorf("list %s: %w", bucket, err)
	}
	res, err := s.list(ctx, bucket, opts)
	if err != nil {
		return objstore.ListResult{}, fmt.Errorf("list %s: %w", bucket, err)
	}
	return res, nil
}

// list lists a bucket whose existence the caller has checked while holding
// s.buckets.
func (s *Store) list(ctx context.Context, bucket string, opts objstore.ListOptions) (objstore.ListResult, error) {
	w := &walker{
		ctx:    ctx,
		s:      s,
		bucket: bucket,
		opts:   opts,
	}
	if _, err := w.walk(s.bucketDir(bucket), ""); err != nil {
		return objstore.ListResult{}, err
	}
	res := objstore.ListResult{Objects: w.out}
	if opts.MaxKeys > 0 && len(res.Objects) > opts.MaxKeys {
		res.Objects = res.Objects[:opts.MaxKeys]
		res.IsTruncated = true
	}
	return res, nil
}

type walker struct {
	ctx    context.Context
	s      *Store
	bucket string
	opts   objstore.ListOptions
	out    []objstore.ObjectInfo
}

type treeEntry struct {
	name  string // file name in its directory
	chunk string // decoded key chunk
	dir   bool
}

// full reports whether enough objects were found: one more than MaxKeys,
// to know whether the listing is truncated.
func (w *walker) full() bool {
	return w.opts.MaxKeys > 0 && len(w.out) > w.opts.MaxKeys
}

// walk visits the tree under dir, whose keys all start with base, in key
// order. done reports that the listing is complete.
func (w *walker) walk(dir, base string) (done bool, err error) {
	if err := w.ctx.Err(); err != nil {
		return true, err
	}
	entries, err := w.readTree(dir)
	if err != nil {
		return true, err
	}
	prefix, after := w.opts.Prefix, w.opts.StartAfter
	for _, e := range entries {
		key := base + e.chunk
		if e.dir {
			// Every key below starts with key and is longer.
			if !strings.HasPrefix(key, prefix) && !strings.HasPrefix(prefix, key) {
				if key > prefix {
					return true, nil // past every key with the prefix
				}
				continue
			}
			if after != "" && key < after && !strings.HasPrefix(after, key) {
				continue // every key below is before StartAfter
			}
			if done, err := w.walk(filepath.Join(dir, e.name), key); done || err != nil {
				return done, err
			}
			continue
		}
		if !strings.HasPrefix(key, prefix) {
			if key > prefix {
				return true, nil
			}
			continue
		}
		if key <= after {
			continue
		}
		f, t, err := openObject(filepath.Join(dir, e.name))
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since the directory was read
		}
		if err != nil {
			w.s.logger.Warn("skipping unreadable object file", "bucket", w.bucket, "key", key, "err", err)
			continue
		}
		f.Close()
		if t.Key != key {
			w.s.logger.Warn("skipping object file whose key does not match its name", "bucket", w.bucket, "key", key, "stored_key", t.Key)
			continue
		}
		w.out = append(w.out, t.info(w.bucket))
		if w.full() {
			return true, nil
		}
	}
	return false, nil
}

// readTree reads the entries of one directory of a bucket tree in the
// order of the keys they hold: by chunk, an object before the directory
// with the same chunk (whose keys are longer).
func (w *walker) readTree(dir string) ([]treeEntry, error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // removed by a concurrent Delete
	}
	if err != nil {
		return nil, err
	}
	entries := make([]treeEntry, 0, len(des))
	for _, de := range des {
		chunk, isDir, ok := parseEntry(de.Name())
		if !ok || isDir != de.IsDir() {
			continue // bucket.json, or something not ours
		}
		entries = append(entries, treeEntry{name: de.Name(), chunk: chunk, dir: isDir})
	}
	slices.SortFunc(entries, func(a, b treeEntry) int {
		if c := strings.Compare(a.chunk, b.chunk); c != 0 {
			return c
		}
		return cmp.Compare(boolInt(a.dir), boolInt(b.dir))
	})
	return entries, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
