package artifacts

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Errors that classify why an artifact was refused. Every error returned
// for a bad artifact wraps exactly one of them, so callers can tell a
// user's mistake from an internal failure with errors.Is.
var (
	// ErrNotArchive reports an artifact that is not a tar or gzip-compressed
	// tar archive.
	ErrNotArchive = errors.New("not a tar or tar.gz archive")
	// ErrUnsafeEntry reports an archive entry (or S3 key) that could escape
	// the model directory or that is of a forbidden type.
	ErrUnsafeEntry = errors.New("unsafe archive entry")
	// ErrTooLarge reports an artifact over Limits.MaxBytes or
	// Limits.MaxFiles.
	ErrTooLarge = errors.New("artifact too large")
)

// Default limits, used when a Limits field is zero or negative.
const (
	DefaultMaxBytes = 10 << 30 // 10 GiB unpacked
	DefaultMaxFiles = 100_000
)

// maxNameLen bounds an entry name. PAX headers allow names of up to 1 MiB;
// os.Root resolves paths component by component, so without this bound one
// entry could create hundreds of thousands of nested directories.
const maxNameLen = 4096

// perEntryOverhead is how many bytes of tar framing (headers, PAX records,
// padding) one entry is allowed when bounding the raw decompressed stream.
const perEntryOverhead = 8 << 10

// Limits bound what unpacking may create, against archive bombs.
type Limits struct {
	// MaxBytes caps the bytes actually written to regular files, summed
	// over all entries (a file that is replaced still counts). Zero means
	// DefaultMaxBytes.
	MaxBytes int64
	// MaxFiles caps the number of filesystem entries created: files,
	// directories (including ones implied by a file's path) and links.
	// Zero means DefaultMaxFiles.
	MaxFiles int
}

func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	return l
}

// streamCap bounds the raw (decompressed) archive stream, so an archive
// made of nothing but framing still stops early.
func (l Limits) streamCap() int64 {
	return l.MaxBytes + int64(l.MaxFiles)*perEntryOverhead + 1<<20
}

// EntryError reports a refused archive entry or S3 key. Its message names
// the entry and is meant to be shown to the user.
type EntryError struct {
	// Name is the entry name as it appears in the archive, or the S3 key.
	Name string
	// Reason completes the sentence "entry <Name> ...".
	Reason string
	// Kind is ErrUnsafeEntry or ErrTooLarge.
	Kind error
}

func (e *EntryError) Error() string { return fmt.Sprintf("entry %q %s", e.Name, e.Reason) }

// Unwrap returns the error's Kind.
func (e *EntryError) Unwrap() error { return e.Kind }

func unsafeEntry(name, format string, args ...any) error {
	return &EntryError{Name: name, Reason: fmt.Sprintf(format, args...), Kind: ErrUnsafeEntry}
}

// unpack extracts a tar archive, gzip-compressed or not (detected by its
// magic bytes), into dest, creating dest if needed. dest should be empty:
// unpack is meant to fill a fresh directory that is renamed into place once
// complete.
//
// What is accepted:
//   - regular files, written with mode 0644, or 0755 when the archive gives
//     any execute bit (setuid, setgid, sticky and group/other write bits are
//     dropped; ownership and times are not restored);
//   - directories, mode 0755;
//   - symbolic links with a relative target that stays inside dest: the
//     target may only climb ("..") at its start, and no higher than dest,
//     which keeps every chain of links inside dest too;
//   - hard links to a regular file extracted earlier from the same archive.
//
// Refused with an error naming the entry: absolute names, names with a ".."
// component, device, FIFO and other special entries, links other than the
// above, and any entry whose parent is not a real directory (so nothing is
// ever written through a symlink). All writes go through an os.Root opened
// on dest as a second line of defence.
//
// unpack stops with ErrTooLarge once more than limits.MaxBytes have been
// written or more than limits.MaxFiles entries created. On error dest may
// hold a partial tree; the caller removes it. durable fsyncs every file and
// directory written, for a tree that must survive a crash once renamed.
func unpack(r io.Reader, dest string, limits Limits, durable bool) error {
	limits = limits.withDefaults()
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("create model directory: %w", err)
	}
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fmt.Errorf("open model directory: %w", err)
	}
	defer root.Close()

	stream, err := decompress(r)
	if err != nil {
		return err
	}
	cr := &cappedReader{r: stream, limit: limits.streamCap()}
	x := newExtractor(root, limits, durable)
	tr := tar.NewReader(cr)
	for first := true; ; first = false {
		hdr, err := tr.Next()
		if errors.Is(err, tar.ErrInsecurePath) {
			err = nil // our own checks below give a clearer message
		}
		if err == io.EOF {
			if first && cr.n == 0 {
				return fmt.Errorf("%w: the archive is empty", ErrNotArchive)
			}
			break
		}
		if err != nil {
			if first && !errors.Is(err, ErrTooLarge) {
				return fmt.Errorf("%w: %w", ErrNotArchive, err)
			}
			return fmt.Errorf("read archive: %w", err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	// Read to the end of the stream so gzip verifies its checksum: a
	// truncated or corrupted download fails here instead of passing as a
	// complete model. Trailing non-gzip bytes after the last member are
	// ignored, as gzip(1) does.
	if _, err := io.Copy(io.Discard, cr); err != nil && !errors.Is(err, gzip.ErrHeader) {
		return fmt.Errorf("read archive: %w", err)
	}
	if durable {
		return x.syncDirs()
	}
	return nil
}

// decompress sniffs r and returns a reader of the tar stream.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(6)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read archive: %w", err)
	}
	switch {
	case len(magic) == 0:
		return nil, fmt.Errorf("%w: the archive is empty", ErrNotArchive)
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: bad gzip header: %w", ErrNotArchive, err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return nil, fmt.Errorf("%w: bzip2 compression is not supported, use gzip", ErrNotArchive)
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, fmt.Errorf("%w: xz compression is not supported, use gzip", ErrNotArchive)
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return nil, fmt.Errorf("%w: zstd compression is not supported, use gzip", ErrNotArchive)
	case bytes.HasPrefix(magic, []byte("PK\x03\x04")):
		return nil, fmt.Errorf("%w: it is a zip file", ErrNotArchive)
	}
	return br, nil
}

// cappedReader fails with ErrTooLarge once more than limit bytes are read.
type cappedReader struct {
	r     io.Reader
	n     int64
	limit int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.n >= c.limit {
		return 0, fmt.Errorf("%w: archive stream is longer than %d bytes", ErrTooLarge, c.limit)
	}
	if rest := c.limit - c.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// extractor creates entries under a root, enforcing the rules documented on
// Unpack. Names given to its methods are already validated and cleaned
// (slash-separated, relative, no "." or ".." components).
type extractor struct {
	root    *os.Root
	limits  Limits
	durable bool // fsync files and directories
	written int64
	created int
	dirs    map[string]bool // paths known to be real directories
}

func newExtractor(root *os.Root, limits Limits, durable bool) *extractor {
	return &extractor{root: root, limits: limits.withDefaults(), durable: durable, dirs: map[string]bool{".": true}}
}

func (x *extractor) entry(hdr *tar.Header, body io.Reader) error {
	name, err := cleanTarName(hdr.Name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if name == "." {
			return nil
		}
		return x.mkdir(hdr.Name, name)
	case tar.TypeReg, tar.TypeGNUSparse:
		if name == "." {
			return unsafeEntry(hdr.Name, "is a file with an empty name")
		}
		return x.file(hdr.Name, name, body, hdr.Mode&0o111 != 0)
	case tar.TypeSymlink:
		return x.symlink(hdr.Name, name, hdr.Linkname)
	case tar.TypeLink:
		return x.hardlink(hdr.Name, name, hdr.Linkname)
	case tar.TypeXGlobalHeader:
		return nil // PAX global metadata, nothing to create
	case tar.TypeChar:
		return unsafeEntry(hdr.Name, "is a character device; only regular files, directories and links are allowed")
	case tar.TypeBlock:
		return unsafeEntry(hdr.Name, "is a block device; only regular files, directories and links are allowed")
	case tar.TypeFifo:
		return unsafeEntry(hdr.Name, "is a named pipe; only regular files, directories and links are allowed")
	default:
		return unsafeEntry(hdr.Name, "has unsupported tar type %q; only regular files, directories and links are allowed", hdr.Typeflag)
	}
}

// cleanTarName validates a tar entry name and returns it cleaned; "." means
// the archive root.
func cleanTarName(raw string) (string, error) {
	if len(raw) > maxNameLen {
		return "", unsafeEntry(raw[:64]+"...", "has a name longer than %d bytes", maxNameLen)
	}
	if strings.ContainsRune(raw, 0) {
		return "", unsafeEntry(raw, "has a NUL byte in its name")
	}
	if raw == "" {
		return "", unsafeEntry(raw, "has an empty name")
	}
	if strings.HasPrefix(raw, "/") || filepath.IsAbs(raw) || filepath.VolumeName(raw) != "" {
		return "", unsafeEntry(raw, "has an absolute path")
	}
	name := path.Clean(raw)
	if name == ".." || strings.HasPrefix(name, "../") {
		return "", unsafeEntry(raw, "escapes the model directory")
	}
	for _, part := range strings.Split(raw, "/") {
		if part == ".." {
			return "", unsafeEntry(raw, "has a \"..\" path component")
		}
	}
	if name != "." && !filepath.IsLocal(filepath.FromSlash(name)) {
		return "", unsafeEntry(raw, "is not a local path")
	}
	return name, nil
}

// cleanKeyName validates the part of an S3 key below the prefix. It is
// stricter than cleanTarName: S3 keys are never normalized, so "a//b" or
// "./a" would silently collide with "a/b" and "a".
func cleanKeyName(key, rel string) (string, error) {
	if len(rel) > maxNameLen {
		return "", unsafeEntry(key, "has a name longer than %d bytes", maxNameLen)
	}
	if strings.ContainsRune(rel, 0) {
		return "", unsafeEntry(key, "has a NUL byte in its name")
	}
	if strings.HasPrefix(rel, "/") {
		return "", unsafeEntry(key, "has an absolute path below the prefix")
	}
	for _, part := range strings.Split(rel, "/") {
		switch part {
		case "..":
			return "", unsafeEntry(key, "escapes the model directory")
		case "", ".":
			return "", unsafeEntry(key, "has an empty or \".\" path component")
		}
	}
	if !filepath.IsLocal(filepath.FromSlash(rel)) {
		return "", unsafeEntry(key, "is not a local path")
	}
	return rel, nil
}

// count records one more created entry.
func (x *extractor) count(raw string) error {
	x.created++
	if x.created > x.limits.MaxFiles {
		return &EntryError{Name: raw, Reason: fmt.Sprintf("exceeds the limit of %d files and directories", x.limits.MaxFiles), Kind: ErrTooLarge}
	}
	return nil
}

// parents makes sure every ancestor of name is a real directory, creating
// missing ones. It refuses to go through a symlink or a file.
func (x *extractor) parents(raw, name string) error {
	dir := path.Dir(name)
	if x.dirs[dir] {
		return nil
	}
	parts := strings.Split(dir, "/")
	for i := range parts {
		p := strings.Join(parts[:i+1], "/")
		if x.dirs[p] {
			continue
		}
		fi, err := x.root.Lstat(filepath.FromSlash(p))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := x.count(raw); err != nil {
				return err
			}
			if err := x.root.Mkdir(filepath.FromSlash(p), 0o755); err != nil {
				return fmt.Errorf("entry %q: %w", raw, err)
			}
			if err := x.root.Chmod(filepath.FromSlash(p), 0o755); err != nil {
				return fmt.Errorf("entry %q: %w", raw, err)
			}
		case err != nil:
			return fmt.Errorf("entry %q: %w", raw, err)
		case fi.Mode()&fs.ModeSymlink != 0:
			return unsafeEntry(raw, "is inside %q, which is a symlink", p)
		case !fi.IsDir():
			return unsafeEntry(raw, "is inside %q, which is not a directory", p)
		}
		x.dirs[p] = true
	}
	return nil
}

// clear removes whatever non-directory exists at name so a later entry can
// replace it, as tar does. It never follows a symlink at name.
func (x *extractor) clear(raw, name string) error {
	fi, err := x.root.Lstat(filepath.FromSlash(name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("entry %q: %w", raw, err)
	}
	if fi.IsDir() {
		return unsafeEntry(raw, "would replace a directory")
	}
	if err := x.root.Remove(filepath.FromSlash(name)); err != nil {
		return fmt.Errorf("entry %q: %w", raw, err)
	}
	return nil
}

func (x *extractor) mkdir(raw, name string) error {
	if err := x.parents(raw, name); err != nil {
		return err
	}
	if x.dirs[name] {
		return nil
	}
	fi, err := x.root.Lstat(filepath.FromSlash(name))
	switch {
	case err == nil && fi.IsDir():
		x.dirs[name] = true
		return nil
	case err == nil:
		if err := x.clear(raw, name); err != nil {
			return err
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("entry %q: %w", raw, err)
	}
	if err := x.count(raw); err != nil {
		return err
	}
	if err := x.root.Mkdir(filepath.FromSlash(name), 0o755); err != nil {
		return fmt.Errorf("entry %q: %w", raw, err)
	}
	if err := x.root.Chmod(filepath.FromSlash(name), 0o755); err != nil {
		return fmt.Errorf("entry %q: %w", raw, err)
	}
	x.dirs[name] = true
	return nil
}

func (x *extractor) file(raw, name string, body io.Reader, exec bool) error {
	if err := x.parents(raw, name); err != nil {
		return err
	}
	if err := x.clear(raw, name); err != nil {
		return err
	}
	if err := x.count(raw); err != nil {
		return err
	}
	perm := fs.FileMode(0o644)
	if exec {
		perm = 0o755
	}
	// O_EXCL: never open through a symlink that might have appeared at name.
	f, err := x.root.OpenFile(filepath.FromSlash(name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("entry %q: %w", raw, err)
	}
	rest := x.limits.MaxBytes - x.written
	n, err := io.Copy(f, io.LimitReader(body, rest+1))
	x.written += n
	if err == nil && x.written > x.limits.MaxBytes {
		err = &EntryError{Name: raw, Reason: fmt.Sprintf("makes the model larger than the limit of %d bytes", x.limits.MaxBytes), Kind: ErrTooLarge}
	}
	if err == nil {
		err = f.Chmod(perm) // the umask must not decide who can read the model
	}
	if err == nil && x.durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	var ee *EntryError
	if err != nil && !errors.As(err, &ee) && !errors.Is(err, ErrTooLarge) {
		err = fmt.Errorf("entry %q: %w", raw, err)
	}
	return err
}

func (x *extractor) symlink(raw, name, target string) error {
	if name == "." {
		return unsafeEntry(raw, "is a symlink with an empty name")
	}
	if err := checkSymlinkTarget(raw, name, target); err != nil {
		return err
	}
	if err := x.parents(raw, name); err != nil {
		return err
	}
	if err := x.clear(raw, name); err != nil {
		return err
	}
	if err := x.count(raw); err != nil {
		return err
	}
	if err := x.root.Symlink(target, filepath.FromSlash(name)); err != nil {
		return fmt.Errorf("entry %q: %w", raw, err)
	}
	return nil
}

// checkSymlinkTarget allows a relative target that climbs only at its start
// and no higher than the model directory. Because every link sits in a real
// directory (parents refuses symlinked parents), its leading ".." resolve
// exactly as written; the rest of the target only descends, through real
// directories or through links that obey the same rule, so no chain of
// links can reach outside the model directory.
func checkSymlinkTarget(raw, name, target string) error {
	if target == "" {
		return unsafeEntry(raw, "is a symlink with an empty target")
	}
	if strings.ContainsRune(target, 0) || len(target) > maxNameLen {
		return unsafeEntry(raw, "is a symlink with an invalid target")
	}
	if strings.HasPrefix(target, "/") || filepath.IsAbs(target) || filepath.VolumeName(target) != "" || strings.Contains(target, `\`) {
		return unsafeEntry(raw, "is a symlink to %q, an absolute path", target)
	}
	depth := strings.Count(name, "/") // directories above the link
	climbing := true
	up := 0
	for _, part := range strings.Split(target, "/") {
		switch {
		case part == ".." && climbing:
			up++
		case part == "..":
			return unsafeEntry(raw, "is a symlink to %q, which goes back up after going down; only leading \"..\" are allowed", target)
		default:
			climbing = false
		}
	}
	if up > depth {
		return unsafeEntry(raw, "is a symlink to %q, outside the model directory", target)
	}
	return nil
}

func (x *extractor) hardlink(raw, name, target string) error {
	if name == "." {
		return unsafeEntry(raw, "is a hard link with an empty name")
	}
	tname, err := cleanTarName(target)
	if err != nil || tname == "." {
		return unsafeEntry(raw, "is a hard link to %q, outside the model directory", target)
	}
	if err := x.realParents(tname); err != nil {
		return unsafeEntry(raw, "is a hard link to %q, which is not a regular file earlier in the archive", target)
	}
	fi, err := x.root.Lstat(filepath.FromSlash(tname))
	if err != nil || !fi.Mode().IsRegular() {
		return unsafeEntry(raw, "is a hard link to %q, which is not a regular file earlier in the archive", target)
	}
	if err := x.parents(raw, name); err != nil {
		return err
	}
	if tname == name {
		return nil // a link to itself changes nothing
	}
	if err := x.clear(raw, name); err != nil {
		return err
	}
	if err := x.count(raw); err != nil {
		return err
	}
	if err := x.root.Link(filepath.FromSlash(tname), filepath.FromSlash(name)); err != nil {
		return fmt.Errorf("entry %q: %w", raw, err)
	}
	return nil
}

// realParents reports whether every ancestor of name is a real directory,
// without creating anything.
func (x *extractor) realParents(name string) error {
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		p := strings.Join(parts[:i], "/")
		if x.dirs[p] {
			continue
		}
		fi, err := x.root.Lstat(filepath.FromSlash(p))
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%q is not a directory", p)
		}
		x.dirs[p] = true
	}
	return nil
}

// syncDirs flushes every directory's entries to disk, so that after a power
// loss a renamed-into-place model directory is complete, not just present.
func (x *extractor) syncDirs() error {
	for d := range x.dirs {
		f, err := x.root.Open(filepath.FromSlash(d))
		if err != nil {
			return fmt.Errorf("sync %q: %w", d, err)
		}
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("sync %q: %w", d, err)
		}
	}
	return nil
}
