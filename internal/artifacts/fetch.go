// Package artifacts fetches model artifacts, as SageMaker CreateModel
// describes them, verifies them, unpacks them safely and caches the result.
//
// A Source is either a single archive (ModelDataUrl, or ModelDataSource
// with CompressionType Gzip) — a tar or tar.gz object in the object store
// or a file:// path — or an uncompressed S3 prefix (ModelDataSource with
// S3DataType S3Prefix and CompressionType None), or a file:// directory.
// file:// sources are read only inside Options.AllowedFileDirs, through an
// os.Root of the allowed directory, and checked on every Fetch.
//
// Unpacked models live in a cache directory, named by content digest:
//
//	cacheDir/sha256-<hex>/   one unpacked model, complete once it exists
//	cacheDir/index/<hex>     source identity -> "sha256-<hex>", lets a repeat
//	                         Fetch skip the download
//	cacheDir/tmp/            work directories, renamed into place when done
//
// For an archive the digest is the SHA-256 of the archive bytes; for an S3
// prefix it is the SHA-256 of the sorted (relative key, ETag, size) list.
// Identical artifacts under different names therefore share one directory.
// A directory only ever appears by an atomic rename of a fully written and
// fsynced work directory, so a crash cannot leave a half-unpacked model
// that looks complete.
//
// Returned directories are read-only by convention: nothing in berth may
// write to them, since other models may share them.
package artifacts

import (
	"context"
	"crypto/sha256"
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
	"time"

	"github.com/berth-io/berth/internal/fsutil"
	"github.com/berth-io/berth/internal/objstore"
)

// ErrNotFound reports a missing artifact: no such object, bucket, file, or
// no object under a prefix. Errors that wrap it also wrap the underlying
// cause (objstore.ErrNoSuchKey, objstore.ErrNoSuchBucket, fs.ErrNotExist).
var ErrNotFound = errors.New("model artifact not found")

// Source says where a model's artifact is.
type Source struct {
	// URL is s3://bucket/key or file:///absolute/path.
	URL string
	// Prefix marks an uncompressed S3Prefix source: every object under the
	// URL's key prefix is one file of the model. A prefix that does not end
	// in "/" is treated as if it did, so s3://b/model means the folder
	// model/, never model-v2/. With a file:// URL, Prefix requires a
	// directory.
	Prefix bool
}

// Options configures a Fetcher.
type Options struct {
	// MaxUnpackedBytes caps the bytes of one unpacked model. Zero means
	// DefaultMaxBytes (10 GiB).
	MaxUnpackedBytes int64
	// MaxFiles caps the files, directories and links of one unpacked
	// model. Zero means DefaultMaxFiles.
	MaxFiles int
	// Logger receives one line per download and unpack. Nil discards.
	Logger *slog.Logger
	// AllowedFileDirs are the directories file:// sources may name
	// (the directory itself or anything under it, symbolic links
	// resolved). Empty: every file:// source is refused with
	// ErrFileNotAllowed.
	AllowedFileDirs []string
}

// Fetcher downloads and unpacks model artifacts into a cache directory. It
// is safe for concurrent use; concurrent Fetches of the same source share
// one download.
type Fetcher struct {
	objects  objstore.Store
	cacheDir string
	limits   Limits
	log      *slog.Logger
	flight   flight
	fileDirs []string // clean absolute AllowedFileDirs
	// sweep is held for reading by every Fetch and for writing by Sweep,
	// so Sweep never deletes a directory being created or returned.
	sweep sync.RWMutex
	cache cache // size budget and eviction (cache.go)
}

// NewFetcher returns a Fetcher that reads s3:// sources from objects and
// keeps unpacked models under cacheDir, which is created on first use.
func NewFetcher(objects objstore.Store, cacheDir string, opts Options) *Fetcher {
	if abs, err := filepath.Abs(cacheDir); err == nil {
		cacheDir = abs
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fetcher{
		objects:  objects,
		cacheDir: filepath.Clean(cacheDir),
		limits:   Limits{MaxBytes: opts.MaxUnpackedBytes, MaxFiles: opts.MaxFiles}.withDefaults(),
		log:      log.With("component", "artifacts"),
		fileDirs: cleanFileDirs(opts.AllowedFileDirs),
	}
}

// location is a parsed Source.
type location struct {
	s3     objstore.S3URI
	file   string // absolute local path, for file:// sources
	prefix bool
}

func parseSource(src Source) (location, error) {
	switch {
	case strings.HasPrefix(src.URL, "s3://"):
		u, err := objstore.ParseS3URI(src.URL)
		if err != nil {
			return location{}, err
		}
		if src.Prefix {
			if u.Key != "" && !strings.HasSuffix(u.Key, "/") {
				u.Key += "/"
			}
		} else if u.Key == "" || strings.HasSuffix(u.Key, "/") {
			return location{}, errors.New("the URL names a folder, not an archive object; use a tar.gz object, or an uncompressed S3Prefix source")
		}
		return location{s3: u, prefix: src.Prefix}, nil
	case strings.HasPrefix(src.URL, "file:"):
		u, err := url.Parse(src.URL)
		if err != nil {
			return location{}, fmt.Errorf("bad file URL: %w", err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return location{}, fmt.Errorf("file URL names host %q; only local files are supported", u.Host)
		}
		if u.Path == "" || !filepath.IsAbs(filepath.FromSlash(u.Path)) || u.Opaque != "" {
			return location{}, errors.New("file URL must hold an absolute path, as in file:///srv/models/model.tar.gz")
		}
		if hasDotDot(u.Path) {
			return location{}, notAllowed(`the path must not contain ".."`)
		}
		return location{file: filepath.Clean(filepath.FromSlash(u.Path)), prefix: src.Prefix}, nil
	default:
		return location{}, errors.New("the URL must start with s3:// or file://")
	}
}

// Check verifies that src exists without downloading it: the object exists
// (and is not empty), the prefix holds at least one object, or the file or
// directory exists. The control plane calls it in CreateModel.
func (f *Fetcher) Check(ctx context.Context, src Source) error {
	loc, err := parseSource(src)
	if err != nil {
		return fmt.Errorf("model artifact %s: %w", src.URL, err)
	}
	if err := f.check(ctx, loc); err != nil {
		return fmt.Errorf("model artifact %s: %w", src.URL, err)
	}
	return nil
}

func (f *Fetcher) check(ctx context.Context, loc location) error {
	switch {
	case loc.file != "":
		fh, _, err := f.openLocal(loc.file)
		if err != nil {
			return err
		}
		fi, err := fh.Stat()
		fh.Close()
		if err != nil {
			return err
		}
		if loc.prefix && !fi.IsDir() {
			return errors.New("an S3Prefix source given as a file:// URL must be a directory")
		}
		if !fi.IsDir() && !fi.Mode().IsRegular() {
			return errors.New("not a regular file or directory")
		}
		return nil
	case loc.prefix:
		_, err := f.listPrefix(ctx, loc.s3, true)
		return err
	default:
		info, err := f.objects.Head(ctx, loc.s3.Bucket, loc.s3.Key)
		if err != nil {
			return wrapNotFound(err)
		}
		if info.Size == 0 {
			return fmt.Errorf("%w: the object is empty", ErrNotArchive)
		}
		return nil
	}
}

// Fetch makes src available as a local directory and returns its absolute
// path. A file:// directory is returned as it is; everything else is
// downloaded, verified and unpacked into the cache, or found there.
// Errors name the artifact and, for a bad archive, the offending entry,
// and are fit to show to the user.
func (f *Fetcher) Fetch(ctx context.Context, src Source) (string, error) {
	loc, err := parseSource(src)
	if err != nil {
		return "", fmt.Errorf("model artifact %s: %w", src.URL, err)
	}
	var over bool
	defer f.trimIfOver(&over) // runs after the read lock is released
	f.sweep.RLock()
	defer f.sweep.RUnlock()
	key := sourceKey(loc)
	dir, err := f.flight.do(ctx, key, func() (string, error) { return f.fetch(ctx, loc) })
	if err != nil {
		return "", fmt.Errorf("model artifact %s: %w", src.URL, err)
	}
	over = f.used(key, dir)
	return dir, nil
}

func (f *Fetcher) fetch(ctx context.Context, loc location) (string, error) {
	switch {
	case loc.file != "":
		return f.fetchFile(ctx, loc)
	case loc.prefix:
		return f.fetchPrefix(ctx, loc.s3)
	default:
		return f.fetchObject(ctx, loc.s3)
	}
}

func (f *Fetcher) fetchObject(ctx context.Context, u objstore.S3URI) (string, error) {
	info, err := f.objects.Head(ctx, u.Bucket, u.Key)
	if err != nil {
		return "", wrapNotFound(err)
	}
	if dir, ok := f.lookup(objectIdentity(info)); ok {
		f.log.Debug("model artifact cached", "url", u.String(), "dir", dir)
		return dir, nil
	}
	body, info, err := f.objects.Get(ctx, u.Bucket, u.Key)
	if err != nil {
		return "", wrapNotFound(err)
	}
	defer body.Close()
	if info.Size == 0 {
		return "", fmt.Errorf("%w: the object is empty", ErrNotArchive)
	}
	dir, err := f.unpackArchive(ctx, body, info.Size, u.String())
	if err != nil {
		return "", err
	}
	f.remember(objectIdentity(info), dir)
	return dir, nil
}

func (f *Fetcher) fetchFile(ctx context.Context, loc location) (string, error) {
	// Checked again here, not only at CreateModel: the configuration
	// or the file system may have changed since.
	fh, real, err := f.openLocal(loc.file)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return "", err
	}
	if fi.IsDir() {
		// A local directory is used in place, not copied: it is the
		// user's own, possibly large, model directory on this machine.
		return real, nil
	}
	if loc.prefix {
		return "", errors.New("an S3Prefix source given as a file:// URL must be a directory")
	}
	if !fi.Mode().IsRegular() {
		return "", errors.New("not a regular file or directory")
	}
	id := fmt.Sprintf("file\x00%s\x00%d\x00%d", loc.file, fi.Size(), fi.ModTime().UnixNano())
	if dir, ok := f.lookup(id); ok {
		return dir, nil
	}
	dir, err := f.unpackArchive(ctx, fh, fi.Size(), loc.file)
	if err != nil {
		return "", err
	}
	f.remember(id, dir)
	return dir, nil
}

// unpackArchive streams an archive into a work directory while hashing it,
// then renames the work directory to its digest name.
func (f *Fetcher) unpackArchive(ctx context.Context, body io.Reader, size int64, name string) (string, error) {
	start := time.Now()
	lim, err := f.unpackLimits(size)
	if err != nil {
		return "", err
	}
	work, err := f.workDir()
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work) // a no-op once renamed

	h := sha256.New()
	raw := &cappedReader{r: contextReader(ctx, body), limit: lim.streamCap()}
	tee := io.TeeReader(raw, h)
	if err := unpack(tee, work, lim, true); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", f.explainSpace(err, lim)
	}
	// Hash whatever follows the tar end marker too: the digest is of the
	// whole object.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return "", fmt.Errorf("read archive: %w", err)
	}
	if size > 0 && raw.n != size {
		return "", fmt.Errorf("download truncated: read %d of %d bytes", raw.n, size)
	}
	dir, err := f.install(work, "sha256-"+hex.EncodeToString(h.Sum(nil)))
	if err != nil {
		return "", err
	}
	f.log.Info("model artifact unpacked", "source", name, "dir", dir, "archive_bytes", raw.n, "duration", time.Since(start))
	return dir, nil
}

func (f *Fetcher) fetchPrefix(ctx context.Context, u objstore.S3URI) (string, error) {
	objs, err := f.listPrefix(ctx, u, false)
	if err != nil {
		return "", err
	}
	// Validate every key and the totals before downloading anything.
	type entry struct {
		info objstore.ObjectInfo
		rel  string
		dir  bool
	}
	entries := make([]entry, 0, len(objs))
	var total int64
	for _, o := range objs {
		rel := strings.TrimPrefix(o.Key, u.Key)
		isDir := strings.HasSuffix(rel, "/")
		rel = strings.TrimSuffix(rel, "/")
		if rel == "" {
			continue // the marker of the prefix folder itself
		}
		rel, err := cleanKeyName(o.Key, rel)
		if err != nil {
			return "", err
		}
		if !isDir {
			total += o.Size
		}
		entries = append(entries, entry{info: o, rel: rel, dir: isDir})
	}
	if len(entries) > f.limits.MaxFiles {
		return "", fmt.Errorf("%w: %d objects under the prefix, over the limit of %d files", ErrTooLarge, len(entries), f.limits.MaxFiles)
	}
	if total > f.limits.MaxBytes {
		return "", fmt.Errorf("%w: %d bytes under the prefix, over the limit of %d bytes", ErrTooLarge, total, f.limits.MaxBytes)
	}
	slices.SortFunc(entries, func(a, b entry) int { return strings.Compare(a.info.Key, b.info.Key) })

	h := sha256.New()
	io.WriteString(h, "berth s3prefix v1\n")
	for _, e := range entries {
		fmt.Fprintf(h, "%q %q %d %t\n", e.rel, e.info.ETag, e.info.Size, e.dir)
	}
	name := "sha256-" + hex.EncodeToString(h.Sum(nil))
	final := filepath.Join(f.cacheDir, name)
	if isDir(final) {
		f.log.Debug("model artifact cached", "url", u.String(), "dir", final)
		return final, nil
	}

	start := time.Now()
	if _, err := f.unpackLimits(total); err != nil {
		return "", err
	}
	work, err := f.workDir()
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	root, err := os.OpenRoot(work)
	if err != nil {
		return "", err
	}
	defer root.Close()
	x := newExtractor(root, f.limits, true)
	for _, e := range entries {
		if e.dir {
			if err := x.mkdir(e.info.Key, e.rel); err != nil {
				return "", err
			}
			continue
		}
		if err := f.downloadInto(ctx, x, u.Bucket, e.info, e.rel); err != nil {
			return "", err
		}
	}
	if err := x.syncDirs(); err != nil {
		return "", err
	}
	if err := root.Close(); err != nil {
		return "", err
	}
	dir, err := f.install(work, name)
	if err != nil {
		return "", err
	}
	f.log.Info("model artifact downloaded", "source", u.String(), "dir", dir, "objects", len(entries), "bytes", total, "duration", time.Since(start))
	return dir, nil
}

func (f *Fetcher) downloadInto(ctx context.Context, x *extractor, bucket string, listed objstore.ObjectInfo, rel string) error {
	body, info, err := f.objects.Get(ctx, bucket, listed.Key)
	if err != nil {
		return fmt.Errorf("get %q: %w", listed.Key, wrapNotFound(err))
	}
	defer body.Close()
	if info.Size != listed.Size || (info.ETag != "" && listed.ETag != "" && info.ETag != listed.ETag) {
		return fmt.Errorf("object %q changed while the model was downloaded; try again", listed.Key)
	}
	// Read one byte more than expected to notice an object that grew.
	counted := &countingReader{r: io.LimitReader(contextReader(ctx, body), info.Size+1)}
	if err := x.file(listed.Key, rel, counted, false); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return err
	}
	if counted.n != info.Size {
		return fmt.Errorf("object %q: read %d bytes, expected %d", listed.Key, counted.n, info.Size)
	}
	return nil
}

// listPrefix lists the objects under u.Key. With firstOnly set, it stops at the
// first object that is not a folder marker. An empty prefix is ErrNotFound.
func (f *Fetcher) listPrefix(ctx context.Context, u objstore.S3URI, firstOnly bool) ([]objstore.ObjectInfo, error) {
	var objs []objstore.ObjectInfo
	files := 0
	opts := objstore.ListOptions{Prefix: u.Key, MaxKeys: 1000}
	for {
		page, err := f.objects.List(ctx, u.Bucket, opts)
		if err != nil {
			return nil, wrapNotFound(err)
		}
		for _, o := range page.Objects {
			objs = append(objs, o)
			if !strings.HasSuffix(o.Key, "/") {
				files++
			}
		}
		if firstOnly && files > 0 {
			return objs, nil
		}
		// One more than the limit is enough to refuse the model.
		if !page.IsTruncated || len(page.Objects) == 0 || len(objs) > f.limits.MaxFiles {
			break
		}
		opts.StartAfter = page.Objects[len(page.Objects)-1].Key
	}
	if files == 0 {
		return nil, notFoundError{fmt.Errorf("no objects under the prefix %q: %w", u.Key, objstore.ErrNoSuchKey)}
	}
	return objs, nil
}

// workDir creates a fresh work directory under cacheDir/tmp.
func (f *Fetcher) workDir() (string, error) {
	tmp := filepath.Join(f.cacheDir, "tmp")
	// Private: model processes may read unpacked models, nothing else.
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return "", fmt.Errorf("create cache directory: %w", err)
	}
	return os.MkdirTemp(tmp, "unpack-")
}

// install renames a complete work directory to cacheDir/name. If another
// Fetch (in this process or another) got there first, its directory is used
// and work is discarded by the caller.
func (f *Fetcher) install(work, name string) (string, error) {
	final := filepath.Join(f.cacheDir, name)
	if err := os.Chmod(work, 0o755); err != nil { // MkdirTemp made it 0700
		return "", err
	}
	if err := os.Rename(work, final); err != nil {
		if isDir(final) {
			return final, nil
		}
		return "", fmt.Errorf("install unpacked model: %w", err)
	}
	if err := fsutil.SyncDir(f.cacheDir); err != nil {
		return "", err
	}
	return final, nil
}

// objectIdentity names one version of an object, for the index.
func objectIdentity(info objstore.ObjectInfo) string {
	return fmt.Sprintf("s3\x00%s\x00%s\x00%s\x00%d\x00%d", info.Bucket, info.Key, info.ETag, info.Size, info.LastModified.UnixNano())
}

func indexName(identity string) string {
	sum := sha256.Sum256([]byte(identity))
	return hex.EncodeToString(sum[:])
}

// lookup returns the cached directory for a source identity, if the index
// knows it and the directory still exists.
func (f *Fetcher) lookup(identity string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(f.cacheDir, "index", indexName(identity)))
	if err != nil {
		return "", false
	}
	name := strings.TrimSpace(string(b))
	if !strings.HasPrefix(name, "sha256-") || strings.ContainsAny(name, `/\`) {
		return "", false
	}
	dir := filepath.Join(f.cacheDir, name)
	return dir, isDir(dir)
}

// remember records identity -> dir in the index. Failing to do so only
// costs a download next time, so errors are logged, not returned.
func (f *Fetcher) remember(identity, dir string) {
	idx := filepath.Join(f.cacheDir, "index")
	err := func() error {
		if err := os.MkdirAll(idx, 0o700); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(idx, ".tmp-")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		_, err = io.WriteString(tmp, filepath.Base(dir)+"\n")
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		return os.Rename(tmp.Name(), filepath.Join(idx, indexName(identity)))
	}()
	if err != nil {
		f.log.Warn("cannot record model artifact in the cache index", "dir", dir, "err", err)
	}
}

// Sweep deletes every cached model directory not in keep (a set of paths
// returned by Fetch), the index entries pointing at them and leftover work
// directories. It waits for running Fetches and blocks new ones meanwhile.
// A cache directory shared by several processes must not be swept while
// another process fetches.
func (f *Fetcher) Sweep(keep map[string]bool) error {
	f.sweep.Lock()
	defer f.sweep.Unlock()
	tmp := filepath.Join(f.cacheDir, "tmp")
	var errs []error
	ents, err := os.ReadDir(f.cacheDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sweep model cache: %w", err)
	}
	for _, e := range ents {
		dir := filepath.Join(f.cacheDir, e.Name())
		if !strings.HasPrefix(e.Name(), "sha256-") || keep[dir] {
			continue
		}
		// Rename first: a crash during RemoveAll must not leave a partly
		// deleted directory under its complete-looking name.
		if err := os.MkdirAll(tmp, 0o700); err != nil {
			errs = append(errs, err)
			continue
		}
		trash, err := os.MkdirTemp(tmp, "trash-")
		if err == nil {
			err = os.Rename(dir, filepath.Join(trash, e.Name()))
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(tmp); err != nil {
		errs = append(errs, err)
	}
	idx := filepath.Join(f.cacheDir, "index")
	ients, _ := os.ReadDir(idx)
	for _, e := range ients {
		b, err := os.ReadFile(filepath.Join(idx, e.Name()))
		if err == nil && isDir(filepath.Join(f.cacheDir, strings.TrimSpace(string(b)))) {
			continue
		}
		if err := os.Remove(filepath.Join(idx, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweep model cache: %w", err)
	}
	return nil
}

// notFoundError marks a missing artifact: it is ErrNotFound and its cause.
type notFoundError struct{ err error }

func (e notFoundError) Error() string   { return e.err.Error() }
func (e notFoundError) Unwrap() []error { return []error{ErrNotFound, e.err} }

func wrapNotFound(err error) error {
	if errors.Is(err, objstore.ErrNoSuchKey) || errors.Is(err, objstore.ErrNoSuchBucket) || errors.Is(err, fs.ErrNotExist) {
		return notFoundError{err}
	}
	return err
}

// readFunc adapts a function to io.Reader.
type readFunc func(p []byte) (int, error)

func (f readFunc) Read(p []byte) (int, error) { return f(p) }

// contextReader stops reading once ctx is done, so a cancelled Fetch stops
// mid-download.
func contextReader(ctx context.Context, r io.Reader) io.Reader {
	return readFunc(func(p []byte) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return r.Read(p)
	})
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func isDir(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.IsDir()
}
