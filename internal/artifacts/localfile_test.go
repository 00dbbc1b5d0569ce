package artifacts

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFileAllowList checks that file:// sources are read only under the
// allowed directories, whatever the path, "..", or symbolic links say, and
// that a refusal says nothing about what exists.
func TestFileAllowList(t *testing.T) {
	allowed := t.TempDir()
	outside := t.TempDir()
	archive := gz(t, makeTar(t, ent{name: "model.txt", body: "m"}))
	for _, p := range []string{
		filepath.Join(allowed, "m.tar.gz"),
		filepath.Join(allowed, "dir", "model.txt"),
		filepath.Join(outside, "secret.tar.gz"),
		filepath.Join(outside, "secretdir", "model.txt"),
	} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, archive, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"out-file":  filepath.Join(outside, "secret.tar.gz"),
		"out-dir":   filepath.Join(outside, "secretdir"),
		"out-rel":   "../" + filepath.Base(outside) + "/secret.tar.gz",
		"in-file":   "m.tar.gz",
		"in-dir":    "dir",
		"dir/up-in": "../m.tar.gz",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(allowed, name)); err != nil {
			t.Fatal(err)
		}
	}

	store := newMemStore()
	f := NewFetcher(store, t.TempDir(), Options{Logger: testLogger(t), AllowedFileDirs: []string{allowed}})
	none := NewFetcher(store, t.TempDir(), Options{Logger: testLogger(t)})
	tests := []struct {
		name    string
		f       *Fetcher
		path    string // a file:// URL is made of it
		rawURL  string // used instead of path when set
		prefix  bool
		refused bool
	}{
		{name: "archive inside", f: f, path: filepath.Join(allowed, "m.tar.gz")},
		{name: "directory inside", f: f, path: filepath.Join(allowed, "dir")},
		{name: "prefix directory inside", f: f, path: filepath.Join(allowed, "dir"), prefix: true},
		{name: "allowed dir itself", f: f, path: allowed},
		{name: "link to a file inside", f: f, path: filepath.Join(allowed, "in-file")},
		{name: "link to a dir inside", f: f, path: filepath.Join(allowed, "in-dir")},
		{name: "relative link staying inside", f: f, path: filepath.Join(allowed, "dir", "up-in")},
		{name: "existing file outside", f: f, path: filepath.Join(outside, "secret.tar.gz"), refused: true},
		{name: "missing file outside", f: f, path: filepath.Join(outside, "nothing.tar.gz"), refused: true},
		{name: "system file", f: f, path: "/etc/passwd", refused: true},
		{name: "sibling with the same prefix", f: f, path: allowed + "-other/m.tar.gz", refused: true},
		{name: "dot-dot escape", f: f, rawURL: "file://" + allowed + "/../" + filepath.Base(outside) + "/secret.tar.gz", refused: true},
		{name: "dot-dot staying inside", f: f, rawURL: "file://" + allowed + "/dir/../m.tar.gz", refused: true},
		{name: "link to a file outside", f: f, path: filepath.Join(allowed, "out-file"), refused: true},
		{name: "relative link outside", f: f, path: filepath.Join(allowed, "out-rel"), refused: true},
		{name: "link to a dir outside", f: f, path: filepath.Join(allowed, "out-dir"), refused: true},
		{name: "through a link to a dir outside", f: f, path: filepath.Join(allowed, "out-dir", "model.txt"), refused: true},
		{name: "nothing allowed", f: none, path: filepath.Join(allowed, "m.tar.gz"), refused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := tt.rawURL
			if u == "" {
				u = fileURL(tt.path)
			}
			src := Source{URL: u, Prefix: tt.prefix}
			checkErr := tt.f.Check(t.Context(), src)
			dir, fetchErr := tt.f.Fetch(t.Context(), src)
			for what, err := range map[string]error{"Check": checkErr, "Fetch": fetchErr} {
				if got := errors.Is(err, ErrFileNotAllowed); got != tt.refused {
					t.Errorf("%s: %v; want refused %v", what, err, tt.refused)
				}
				if tt.refused && strings.Contains(err.Error(), "no such file") {
					t.Errorf("%s: refusal tells whether the path exists: %v", what, err)
				}
				if !tt.refused && err != nil {
					t.Errorf("%s: %v", what, err)
				}
			}
			if fetchErr == nil && !strings.HasPrefix(dir, allowed) && !strings.HasPrefix(dir, filepath.Dir(filepath.Dir(dir))) {
				t.Errorf("Fetch returned %s", dir)
			}
			if tt.refused && dir != "" {
				t.Errorf("refused Fetch returned %q", dir)
			}
		})
	}

	// Checked again at fetch time: a file swapped for a link that leads
	// out after CreateModel's check is refused.
	swap := filepath.Join(allowed, "swap.tar.gz")
	if err := os.WriteFile(swap, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := f.Check(t.Context(), Source{URL: fileURL(swap)}); err != nil {
		t.Fatal(err)
	}
	os.Remove(swap)
	if err := os.Symlink(filepath.Join(outside, "secret.tar.gz"), swap); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Fetch(t.Context(), Source{URL: fileURL(swap)}); !errors.Is(err, ErrFileNotAllowed) {
		t.Errorf("Fetch after the swap = %v, want ErrFileNotAllowed", err)
	}
}

// TestFileFIFO: a FIFO in an allowed directory is refused at once, not
// waited on.
func TestFileFIFO(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "m.tar.gz")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Skip(err)
	}
	f := NewFetcher(newMemStore(), t.TempDir(), Options{Logger: testLogger(t), AllowedFileDirs: []string{dir}})
	done := make(chan error, 2)
	go func() { done <- f.Check(t.Context(), Source{URL: fileURL(fifo)}) }()
	go func() { _, err := f.Fetch(t.Context(), Source{URL: fileURL(fifo)}); done <- err }()
	for range 2 {
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("Check/Fetch of a FIFO = %v, want not a regular file", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Check or Fetch of a FIFO hangs")
		}
	}
}
