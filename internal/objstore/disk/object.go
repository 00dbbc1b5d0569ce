package disk

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-io/berth/internal/fsutil"
	"github.com/berth-io/berth/internal/objstore"
)

// An object file holds the object's bytes followed by a JSON trailer, the
// trailer's length as a big-endian uint32 and a magic string. Keeping data
// and metadata in one file lets one rename replace both.
const (
	trailerMagic   = "BERTHOB1"
	trailerTailLen = 4 + len(trailerMagic)
	maxTrailerLen  = 1 << 20
)

// trailer is the metadata stored with each object.
type trailer struct {
	Key          string            `json:"key"`
	Size         int64             `json:"size"`
	ETag         string            `json:"etag"`
	LastModified time.Time         `json:"last_modified"`
	ContentType  string            `json:"content_type,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

func (t *trailer) info(bucket string) objstore.ObjectInfo {
	return objstore.ObjectInfo{
		Bucket:       bucket,
		Key:          t.Key,
		Size:         t.Size,
		ETag:         t.ETag,
		LastModified: t.LastModified,
		ContentType:  t.ContentType,
		Metadata:     maps.Clone(t.Metadata),
	}
}

func (s *Store) objectPath(bucket, key string) string {
	return filepath.Join(s.bucketDir(bucket), keyRelPath(key))
}

// Put stores body under key, replacing any object there atomically. The
// body is written to a temporary file first; bucket creation and deletion
// wait only for the final rename, not for the upload.
func (s *Store) Put(ctx context.Context, bucket, key string, body io.Reader, opts objstore.PutOptions) (objstore.ObjectInfo, error) {
	if err := objstore.ValidateKey(key); err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	// Fail early for a missing bucket; checked again before the rename.
	s.buckets.RLock()
	err := s.checkBucket(bucket)
	s.buckets.RUnlock()
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}

	f, err := os.CreateTemp(s.tmp, "put-")
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	tmp := f.Name()
	t, err := writeObject(ctx, f, key, body, opts, s.now().UTC())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		s.buckets.RLock()
		err = s.checkBucket(bucket)
		if err == nil {
			err = s.moveIntoPlace(tmp, s.objectPath(bucket, key), s.bucketDir(bucket))
		}
		s.buckets.RUnlock()
	}
	if err != nil {
		_ = os.Remove(tmp)
		return objstore.ObjectInfo{}, fmt.Errorf("put %s/%s: %w", bucket, key, err)
	}
	return t.info(bucket), nil
}

// writeObject writes body and its trailer to f and syncs it.
func writeObject(ctx context.Context, f *os.File, key string, body io.Reader, opts objstore.PutOptions, now time.Time) (*trailer, error) {
	h := md5.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 256<<10)
	n, err := io.Copy(w, ctxReader{ctx: ctx, r: body})
	if err != nil {
		return nil, err
	}
	if err := w.Flush(); err != nil {
		return nil, err
	}
	t := &trailer{
		Key:          key,
		Size:         n,
		ETag:         `"` + hex.EncodeToString(h.Sum(nil)) + `"`,
		LastModified: now,
		ContentType:  opts.ContentType,
	}
	if len(opts.Metadata) > 0 {
		t.Metadata = make(map[string]string, len(opts.Metadata))
		for k, v := range opts.Metadata {
			t.Metadata[strings.ToLower(k)] = v
		}
	}
	meta, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	if len(meta) > maxTrailerLen {
		return nil, fmt.Errorf("metadata of %d bytes is too large", len(meta))
	}
	tail := binary.BigEndian.AppendUint32(meta, uint32(len(meta)))
	tail = append(tail, trailerMagic...)
	if _, err := f.Write(tail); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	return t, nil
}

// moveIntoPlace renames the complete temporary file tmp to path, creating
// the directories on the way. A concurrent Delete may remove an emptied
// directory between creation and rename, so that is retried.
func (s *Store) moveIntoPlace(tmp, path, bucketDir string) error {
	dir := filepath.Dir(path)
	var err error
	for range 10 {
		if err = ensureDir(dir, bucketDir); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return err
		}
		if err = os.Rename(tmp, path); err == nil {
			return fsutil.SyncDir(dir)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return err
}

// ensureDir creates dir and any missing parents up to (not including)
// stop, syncing each parent that gains an entry.
func ensureDir(dir, stop string) error {
	if dir == stop {
		return nil
	}
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if err := ensureDir(parent, stop); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return fsutil.SyncDir(parent)
}

// ctxReader stops reading once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// openObject opens the object file at path and reads its trailer.
func openObject(path string) (*os.File, *trailer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	t, err := readTrailer(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, t, nil
}

var errCorrupt = errors.New("corrupt object file")

func readTrailer(f *os.File) (*trailer, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if size < int64(trailerTailLen) {
		return nil, errCorrupt
	}
	var tail [trailerTailLen]byte
	if _, err := f.ReadAt(tail[:], size-int64(trailerTailLen)); err != nil {
		return nil, err
	}
	if string(tail[4:]) != trailerMagic {
		return nil, errCorrupt
	}
	n := int64(binary.BigEndian.Uint32(tail[:4]))
	if n > maxTrailerLen || n > size-int64(trailerTailLen) {
		return nil, errCorrupt
	}
	meta := make([]byte, n)
	dataLen := size - int64(trailerTailLen) - n
	if _, err := f.ReadAt(meta, dataLen); err != nil {
		return nil, err
	}
	var t trailer
	if err := json.Unmarshal(meta, &t); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorrupt, err)
	}
	if t.Size != dataLen {
		return nil, errCorrupt
	}
	return &t, nil
}

// objectReader reads an object's bytes from its open file. It implements
// io.Seeker and io.ReaderAt as well.
type objectReader struct {
	*io.SectionReader
	f *os.File
}

func (r *objectReader) Close() error { return r.f.Close() }

// Get opens the object for reading. The caller closes the reader. The
// returned reader also implements io.Seeker and io.ReaderAt. An object
// replaced or deleted after Get returns is still read in full.
func (s *Store) Get(ctx context.Context, bucket, key string) (io.ReadCloser, objstore.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, objstore.ObjectInfo{}, err
	}
	f, t, err := s.open(bucket, key)
	if err != nil {
		return nil, objstore.ObjectInfo{}, fmt.Errorf("get %s/%s: %w", bucket, key, err)
	}
	return &objectReader{SectionReader: io.NewSectionReader(f, 0, t.Size), f: f}, t.info(bucket), nil
}

// Head returns the object's attributes.
func (s *Store) Head(ctx context.Context, bucket, key string) (objstore.ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return objstore.ObjectInfo{}, err
	}
	f, t, err := s.open(bucket, key)
	if err != nil {
		return objstore.ObjectInfo{}, fmt.Errorf("head %s/%s: %w", bucket, key, err)
	}
	f.Close()
	return t.info(bucket), nil
}

func (s *Store) open(bucket, key string) (*os.File, *trailer, error) {
	if err := objstore.ValidateKey(key); err != nil {
		return nil, nil, err
	}
	s.buckets.RLock()
	defer s.buckets.RUnlock()
	if err := s.checkBucket(bucket); err != nil {
		return nil, nil, err
	}
	f, t, err := openObject(s.objectPath(bucket, key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, objstore.ErrNoSuchKey
	}
	if err != nil {
		return nil, nil, err
	}
	return f, t, nil
}

// Delete removes the object. Deleting a missing key succeeds, as on S3.
func (s *Store) Delete(ctx context.Context, bucket, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.buckets.RLock()
	defer s.buckets.RUnlock()
	if err := s.checkBucket(bucket); err != nil {
		return fmt.Errorf("delete %s/%s: %w", bucket, key, err)
	}
	if objstore.ValidateKey(key) != nil {
		return nil // no such object can exist
	}
	path := s.objectPath(bucket, key)
	if err := os.Remove(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("delete %s/%s: %w", bucket, key, err)
	}
	bucketDir := s.bucketDir(bucket)
	dir := filepath.Dir(path)
	if err := fsutil.SyncDir(dir); err != nil {
		return fmt.Errorf("delete %s/%s: %w", bucket, key, err)
	}
	// Remove the directories the key emptied; Remove fails harmlessly on
	// one that still has entries.
	for dir != bucketDir {
		if os.Remove(dir) != nil {
			break
		}
		dir = filepath.Dir(dir)
	}
	return nil
}
