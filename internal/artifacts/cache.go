package artifacts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The cache's size budget. Unpacked models stay in the cache after the
// model that used them is gone, so that a model created again (or another
// with the same data) starts without a download; the budget bounds what
// that costs. Trim evicts unreferenced models, least recently used first,
// until the cache fits the budget: Trim runs at start-up, and after a Fetch
// that unpacked a new model took the cache over its budget. A model is
// referenced while a model or endpoint of the control plane names its
// source, or while a running instance uses its directory (References).
//
// Recency is the directory's modification time, which Fetch sets on every
// use, so it survives a restart. The source a directory was last fetched
// for is recorded in cacheDir/sources/<hash of source> (the index maps
// object versions, which Trim could not resolve without asking the object
// store).

// ErrNoSpace reports an artifact that cannot fit on the free disk.
var ErrNoSpace = errors.New("not enough free disk space")

// References reports what the cache must keep: the sources of every model
// that exists, and the model directories of running instances.
type References func(ctx context.Context) (sources []Source, dirs []string, err error)

// CacheOptions sets the cache's budget.
type CacheOptions struct {
	// MaxBytes is the budget: the bytes of unpacked models the cache may
	// hold. Zero or less disables eviction.
	MaxBytes int64
	// References lists what must not be evicted. Required with MaxBytes.
	References References
	// ReserveBytes is disk space left free when a model is unpacked: the
	// unpack cap is lowered to the free space minus this. Default 64 MiB.
	ReserveBytes int64
}

// cache is the Fetcher's budget state.
type cache struct {
	opts CacheOptions

	mu      sync.Mutex
	sizes   map[string]int64 // bytes of each cached directory, by name
	total   int64            // sum of sizes, valid once scanned
	scanned bool

	// freeBytes measures the free disk; tests replace it.
	freeBytes func(path string) (int64, bool)

	// Background trims (TrimSoon): one at a time, again if asked meanwhile.
	trimming, again, closed bool
	trims                   sync.WaitGroup
}

// SetCache gives the Fetcher a size budget. Call it before the first
// Fetch, then Trim once.
func (f *Fetcher) SetCache(opts CacheOptions) {
	if opts.ReserveBytes <= 0 {
		opts.ReserveBytes = 64 << 20
	}
	f.cache.mu.Lock()
	f.cache.opts = opts
	f.cache.mu.Unlock()
}

// sourceKey names a source for the flight group and the source record.
func sourceKey(loc location) string {
	key := "s3\x00" + loc.s3.Bucket + "\x00" + loc.s3.Key
	if loc.file != "" {
		key = "file\x00" + loc.file
	}
	return key + "\x00" + strconv.FormatBool(loc.prefix)
}

// cachedName returns the cache entry name of dir, or "" for a directory
// outside the cache (a file:// directory used in place).
func (f *Fetcher) cachedName(dir string) string {
	name := filepath.Base(dir)
	if filepath.Dir(dir) != f.cacheDir || !strings.HasPrefix(name, "sha256-") {
		return ""
	}
	return name
}

// used records that a Fetch of the source key returned dir: the directory
// becomes the most recently used and the source's record points at it. It
// reports whether the cache is now over its budget. It runs under the
// sweep read lock, so Trim sees the record.
func (f *Fetcher) used(key, dir string) (over bool) {
	name := f.cachedName(dir)
	if name == "" {
		return false
	}
	now := time.Now()
	if err := os.Chtimes(dir, now, now); err != nil {
		f.log.Debug("cannot mark model artifact used", "dir", dir, "err", err)
	}
	f.writeRecord("sources", indexName(key), name)

	c := &f.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opts.MaxBytes <= 0 || !c.scanned {
		return false
	}
	if _, ok := c.sizes[name]; !ok {
		n := dirSize(dir)
		c.sizes[name] = n
		c.total += n
	}
	return c.total > c.opts.MaxBytes
}

// trimIfOver starts a Trim after a Fetch that took the cache over budget.
func (f *Fetcher) trimIfOver(over *bool) {
	if *over {
		f.TrimSoon()
	}
}

// TrimSoon runs Trim in the background: after a Fetch took the cache over
// its budget, or when models or instances went away (their artifacts may
// now be evicted). Trims run one at a time; a call during one makes it run
// once more. Close waits for it.
func (f *Fetcher) TrimSoon() {
	c := &f.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.opts.MaxBytes <= 0 || c.opts.References == nil {
		return
	}
	if c.trimming {
		c.again = true
		return
	}
	c.trimming = true
	c.trims.Add(1)
	go func() {
		defer c.trims.Done()
		for {
			if err := f.Trim(context.Background()); err != nil {
				f.log.Warn("trim model cache", "err", err)
			}
			c.mu.Lock()
			if !c.again || c.closed {
				c.trimming, c.again = false, false
				c.mu.Unlock()
				return
			}
			c.again = false
			c.mu.Unlock()
		}
	}()
}

// Close waits for a background trim and starts no more.
func (f *Fetcher) Close() {
	f.cache.mu.Lock()
	f.cache.closed = true
	f.cache.mu.Unlock()
	f.cache.trims.Wait()
}

// Trim evicts unreferenced cached models, least recently used first, until
// the cache fits its budget, and removes work directories left by a crash.
// It waits for Fetches in progress and holds new ones back meanwhile. If
// the references cannot be listed, nothing is evicted.
func (f *Fetcher) Trim(ctx context.Context) error {
	f.cache.mu.Lock()
	opts := f.cache.opts
	f.cache.mu.Unlock()
	if opts.MaxBytes <= 0 || opts.References == nil {
		return nil
	}
	f.sweep.Lock()
	defer f.sweep.Unlock()
	// No Fetch runs now, so whatever is under tmp is left over.
	if err := os.RemoveAll(filepath.Join(f.cacheDir, "tmp")); err != nil {
		f.log.Warn("remove leftover work directories", "err", err)
	}
	// The references are read under the lock: a model fetched after they
	// were read could otherwise be evicted before its instance starts.
	sources, dirs, err := opts.References(ctx)
	if err != nil {
		return fmt.Errorf("trim model cache: list references: %w", err)
	}
	keep := map[string]bool{}
	for _, d := range dirs {
		if name := f.cachedName(filepath.Clean(d)); name != "" {
			keep[name] = true
		}
	}
	for _, src := range sources {
		loc, err := parseSource(src)
		if err != nil {
			continue
		}
		if name := f.readRecord("sources", indexName(sourceKey(loc))); name != "" {
			keep[name] = true
		}
	}

	type entry struct {
		name string
		size int64
		used time.Time
	}
	ents, err := os.ReadDir(f.cacheDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("trim model cache: %w", err)
	}
	c := &f.cache
	c.mu.Lock()
	if c.sizes == nil {
		c.sizes = map[string]int64{}
	}
	present := map[string]bool{}
	var total int64
	var victims []entry
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, "sha256-") || !e.IsDir() {
			continue
		}
		present[name] = true
		size, ok := c.sizes[name]
		if !ok {
			size = dirSize(filepath.Join(f.cacheDir, name))
			c.sizes[name] = size
		}
		total += size
		if keep[name] {
			continue
		}
		var used time.Time
		if fi, err := e.Info(); err == nil {
			used = fi.ModTime()
		}
		victims = append(victims, entry{name, size, used})
	}
	for name := range c.sizes {
		if !present[name] {
			delete(c.sizes, name)
		}
	}
	c.total, c.scanned = total, true
	c.mu.Unlock()

	slices.SortFunc(victims, func(a, b entry) int {
		if c := a.used.Compare(b.used); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	var errs []error
	evicted := 0
	for _, v := range victims {
		if total <= opts.MaxBytes {
			break
		}
		if err := f.evict(v.name); err != nil {
			errs = append(errs, err)
			continue
		}
		total -= v.size
		evicted++
		f.log.Info("evicted model artifact from the cache", "dir", v.name, "bytes", v.size, "last_used", v.used)
		c.mu.Lock()
		c.total -= v.size
		delete(c.sizes, v.name)
		c.mu.Unlock()
	}
	if evicted > 0 {
		f.pruneRecords("index")
		f.pruneRecords("sources")
	}
	if total > opts.MaxBytes {
		f.log.Warn("model cache over its budget with models in use", "bytes", total, "budget", opts.MaxBytes)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("trim model cache: %w", err)
	}
	return nil
}

// evict removes one cached directory. It is first renamed out of its
// complete-looking name, so a crash mid-removal leaves only trash.
func (f *Fetcher) evict(name string) error {
	tmp := filepath.Join(f.cacheDir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	trash, err := os.MkdirTemp(tmp, "trash-")
	if err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(f.cacheDir, name), filepath.Join(trash, name)); err != nil {
		os.Remove(trash)
		return err
	}
	return os.RemoveAll(trash)
}

// writeRecord writes cacheDir/<sub>/<file> = name atomically. A failure
// only costs a download or an early eviction, so it is logged.
func (f *Fetcher) writeRecord(sub, file, name string) {
	dir := filepath.Join(f.cacheDir, sub)
	path := filepath.Join(dir, file)
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == name {
		return
	}
	err := func() error {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(dir, ".tmp-")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		_, err = tmp.WriteString(name + "\n")
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		return os.Rename(tmp.Name(), path)
	}()
	if err != nil {
		f.log.Warn("cannot record model artifact", "record", sub, "err", err)
	}
}

// readRecord returns the cache entry name a record points at, or "".
func (f *Fetcher) readRecord(sub, file string) string {
	b, err := os.ReadFile(filepath.Join(f.cacheDir, sub, file))
	if err != nil {
		return ""
	}
	name := strings.TrimSpace(string(b))
	if !strings.HasPrefix(name, "sha256-") || strings.ContainsAny(name, `/\`) {
		return ""
	}
	return name
}

// pruneRecords removes the records of sub that point at no directory.
func (f *Fetcher) pruneRecords(sub string) {
	dir := filepath.Join(f.cacheDir, sub)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		name := f.readRecord(sub, e.Name())
		if name != "" && isDir(filepath.Join(f.cacheDir, name)) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			f.log.Warn("remove stale cache record", "record", sub, "err", err)
		}
	}
}

// dirSize returns the bytes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// unpackLimits returns the limits for unpacking an artifact whose stored
// size is size bytes (-1 when unknown): the cap is lowered to the free
// disk, less a reserve, and an artifact that cannot fit even as stored is
// refused before anything is written.
func (f *Fetcher) unpackLimits(size int64) (Limits, error) {
	lim := f.limits
	f.cache.mu.Lock()
	reserve, measure := f.cache.opts.ReserveBytes, f.cache.freeBytes
	f.cache.mu.Unlock()
	if measure == nil {
		measure = freeBytes
	}
	free, ok := measure(f.cacheDir)
	if !ok {
		return lim, nil
	}
	if reserve <= 0 {
		reserve = 64 << 20
	}
	room := max(free-reserve, 0)
	if size > room {
		return lim, fmt.Errorf("%w: the model data is %d bytes and the data dir's disk has %d bytes free (berth keeps %d bytes in reserve); free some space or lower the cache budget (artifacts.cache_max_bytes)", ErrNoSpace, size, free, reserve)
	}
	if room < lim.MaxBytes {
		lim.MaxBytes = room
	}
	return lim, nil
}

// explainSpace turns an ErrTooLarge caused by a cap that unpackLimits
// lowered to the free disk into ErrNoSpace, which says so.
func (f *Fetcher) explainSpace(err error, lim Limits) error {
	if err == nil || lim.MaxBytes >= f.limits.MaxBytes || !errors.Is(err, ErrTooLarge) {
		return err
	}
	return fmt.Errorf("%w: the unpacked model does not fit in the %d bytes free on the data dir's disk: %w", ErrNoSpace, lim.MaxBytes, err)
}

// FreeBytes returns the bytes available to berth on the file system that
// holds path; ok is false where that cannot be known.
func FreeBytes(path string) (int64, bool) { return freeBytes(path) }
