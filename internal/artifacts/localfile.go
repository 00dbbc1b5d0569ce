package artifacts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrFileNotAllowed reports a file:// source outside every directory the
// Fetcher may read (Options.AllowedFileDirs), including one that gets out
// through a symbolic link or "..". Its message never says whether the
// path exists.
var ErrFileNotAllowed = errors.New("file:// model data is not under a directory berth may read")

// NotAllowedError is the ErrFileNotAllowed of one source, with the reason.
type NotAllowedError struct {
	// Why is the reason in words, naming no host path.
	Why string
}

func (e *NotAllowedError) Error() string        { return ErrFileNotAllowed.Error() + ": " + e.Why }
func (e *NotAllowedError) Is(target error) bool { return target == ErrFileNotAllowed }

func notAllowed(why string) error { return &NotAllowedError{Why: why} }

// hasDotDot reports whether a slash-separated path has a ".." element.
func hasDotDot(p string) bool {
	for _, e := range strings.Split(p, "/") {
		if e == ".." {
			return true
		}
	}
	return false
}

// inDir reports whether path p lies in (or is) directory dir; both clean
// and absolute.
func inDir(dir, p string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, string(filepath.Separator))+string(filepath.Separator))
}

// allowedRoot returns the allowed directory that lexically holds p, or an
// ErrFileNotAllowed error. Nothing on disk is looked at, so a refused path
// leaks nothing about what exists.
func (f *Fetcher) allowedRoot(p string) (string, error) {
	for _, d := range f.fileDirs {
		if inDir(d, p) {
			return d, nil
		}
	}
	if len(f.fileDirs) == 0 {
		return "", notAllowed("no directory is allowed")
	}
	return "", notAllowed("it is not under an allowed directory")
}

// openLocal opens a file:// source inside its allowed directory. The
// directory is opened as an os.Root, so no symbolic link (nor a rename
// racing with this call) leads outside it. It returns the open file and,
// for a directory, its path with symbolic links resolved, which is what
// the model process is given.
func (f *Fetcher) openLocal(p string) (*os.File, string, error) {
	dir, err := f.allowedRoot(p)
	if err != nil {
		return nil, "", err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, "", wrapNotFound(pathless(err))
	}
	defer root.Close()
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return nil, "", notAllowed("it is not under an allowed directory")
	}
	// O_NONBLOCK: opening a FIFO must not hang; regular files and
	// directories ignore it.
	fh, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, fs.ErrPermission) {
			// os.Root refuses symbolic links that lead out of it.
			return nil, "", notAllowed("a symbolic link leads out of the allowed directory")
		}
		return nil, "", wrapNotFound(pathless(err))
	}
	fi, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, "", err
	}
	if !fi.IsDir() {
		return fh, "", nil
	}
	// A directory is used in place by path, so its resolved path must be
	// inside the resolved allowed directory too.
	real, err := filepath.EvalSymlinks(p)
	if err == nil {
		var realDir string
		if realDir, err = filepath.EvalSymlinks(dir); err == nil && !inDir(realDir, real) {
			err = notAllowed("a symbolic link leads out of the allowed directory")
		}
	}
	if err != nil {
		fh.Close()
		return nil, "", err
	}
	return fh, real, nil
}

// pathless drops the path from an *fs.PathError: errors about a file://
// source already name its URL, and must not show where, behind symbolic
// links, an allowed directory really lives.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// cleanFileDirs makes the configured directories absolute and clean.
func cleanFileDirs(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		if d == "" {
			continue
		}
		if abs, err := filepath.Abs(d); err == nil {
			out = append(out, filepath.Clean(abs))
		}
	}
	return out
}
