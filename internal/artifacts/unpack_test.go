package artifacts

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnpack(t *testing.T) {
	small := Limits{MaxBytes: 1 << 20, MaxFiles: 10}
	tests := []struct {
		name    string
		archive func(t *testing.T) []byte
		limits  Limits
		wantErr error  // nil: success
		wantMsg string // substring of the error message
		check   func(t *testing.T, dest string)
	}{
		{
			name: "good tar.gz with nested dirs and exec bit",
			archive: func(t *testing.T) []byte {
				return gz(t, makeTar(t,
					ent{name: "./", typ: tar.TypeDir, mode: 0o755},
					ent{name: "code/", typ: tar.TypeDir, mode: 0o700},
					ent{name: "code/serve.py", body: "print(1)", mode: 0o4755}, // setuid dropped
					ent{name: "weights/layer/0.bin", body: "abc", mode: 0o666},
					ent{name: "model.json", body: "{}", mode: 0o600},
				))
			},
			check: func(t *testing.T, dest string) {
				wantFile(t, dest, "code/serve.py", "print(1)", 0o755)
				wantFile(t, dest, "weights/layer/0.bin", "abc", 0o644)
				wantFile(t, dest, "model.json", "{}", 0o644)
				wantMode(t, dest, "code", fs.ModeDir|0o755)
				wantMode(t, dest, "weights/layer", fs.ModeDir|0o755)
			},
		},
		{
			name: "uncompressed tar",
			archive: func(t *testing.T) []byte {
				return makeTar(t, ent{name: "a/b.txt", body: "hi"})
			},
			check: func(t *testing.T, dest string) { wantFile(t, dest, "a/b.txt", "hi", 0o644) },
		},
		{
			name: "in-tree symlinks and hard link",
			archive: func(t *testing.T) []byte {
				return makeTar(t,
					ent{name: "v1/model.bin", body: "w"},
					ent{name: "latest", typ: tar.TypeSymlink, link: "v1"},
					ent{name: "v2/model.bin", typ: tar.TypeSymlink, link: "../v1/model.bin"},
					ent{name: "copy.bin", typ: tar.TypeLink, link: "v1/model.bin"},
				)
			},
			check: func(t *testing.T, dest string) {
				wantFile(t, dest, "latest/model.bin", "w", 0o644)
				wantFile(t, dest, "v2/model.bin", "w", 0o644)
				wantFile(t, dest, "copy.bin", "w", 0o644)
			},
		},
		{
			name: "later entry replaces a symlink without following it",
			archive: func(t *testing.T) []byte {
				return makeTar(t,
					ent{name: "target", body: "original"},
					ent{name: "l", typ: tar.TypeSymlink, link: "target"},
					ent{name: "l", body: "replaced"},
				)
			},
			check: func(t *testing.T, dest string) {
				wantFile(t, dest, "target", "original", 0o644)
				wantFile(t, dest, "l", "replaced", 0o644)
			},
		},
		{
			name:    "traversal",
			archive: func(t *testing.T) []byte { return makeTar(t, ent{name: "../x", body: "evil"}) },
			wantErr: ErrUnsafeEntry,
			wantMsg: `entry "../x" escapes the model directory`,
		},
		{
			name:    "traversal in the middle",
			archive: func(t *testing.T) []byte { return makeTar(t, ent{name: "a/../../x", body: "evil"}) },
			wantErr: ErrUnsafeEntry,
			wantMsg: `entry "a/../../x" escapes the model directory`,
		},
		{
			name:    "dot-dot that stays inside is still refused",
			archive: func(t *testing.T) []byte { return makeTar(t, ent{name: "a/../b", body: "x"}) },
			wantErr: ErrUnsafeEntry,
			wantMsg: `entry "a/../b" has a ".." path component`,
		},
		{
			name:    "absolute path",
			archive: func(t *testing.T) []byte { return makeTar(t, ent{name: "/etc/cron.d/x", body: "evil"}) },
			wantErr: ErrUnsafeEntry,
			wantMsg: `entry "/etc/cron.d/x" has an absolute path`,
		},
		{
			name: "symlink escape",
			archive: func(t *testing.T) []byte {
				return makeTar(t, ent{name: "a/l", typ: tar.TypeSymlink, link: "../../etc"})
			},
			wantErr: ErrUnsafeEntry,
			wantMsg: `entry "a/l" is a symlink to "../../etc", outside the model directory`,
		},
		{
			name: "absolute symlink",
			archive: func(t *testing.T) []byte {
				return makeTar(t, ent{name: "l", typ: tar.TypeSymlink, link: "/etc/passwd"})
			},
			wantErr: ErrUnsafeEntry,
			wantMsg: "an absolute path",
		},
		{
			name: "symlink chain that resolves outside",
			// d/b -> ".." is dest itself, but l -> "d/b/.." would then be
			// dest's parent: refused because ".." follows a name.
			archive: func(t *testing.T) []byte {
				return makeTar(t,
					ent{name: "d/b", typ: tar.TypeSymlink, link: ".."},
					ent{name: "l", typ: tar.TypeSymlink, link: "d/b/.."},
				)
			},
			wantErr: ErrUnsafeEntry,
			wantMsg: `entry "l" is a symlink to "d/b/..", which goes back up`,
		},
		{
			name: "write through a symlink",
			archive: func(t *testing.T) []byte {
				return makeTar(t,
					ent{name: "sub/", typ: tar.TypeDir},
					ent{name: "l", typ: tar.TypeSymlink, link: "sub"},
					ent{name: "l/x", body: "through"},
				)
			},
			wantErr: ErrUnsafeEntry,
			wantMsg: `entry "l/x" is inside "l", which is a symlink`,
		},
		{
			name: "symlink then link placed through it",
			archive: func(t *testing.T) []byte {
				return makeTar(t,
					ent{name: "x", typ: tar.TypeSymlink, link: "."},
					ent{name: "x/up", typ: tar.TypeSymlink, link: ".."},
				)
			},
			wantErr: ErrUnsafeEntry,
			wantMsg: `entry "x/up"`,
		},
		{
			name: "hard link escape",
			archive: func(t *testing.T) []byte {
				return makeTar(t, ent{name: "h", typ: tar.TypeLink, link: "../../etc/passwd"})
			},
			wantErr: ErrUnsafeEntry,
			wantMsg: `entry "h" is a hard link to "../../etc/passwd", outside the model directory`,
		},
		{
			name: "absolute hard link",
			archive: func(t *testing.T) []byte {
				return makeTar(t, ent{name: "h", typ: tar.TypeLink, link: "/etc/passwd"})
			},
			wantErr: ErrUnsafeEntry,
		},
		{
			name: "hard link to a symlink",
			archive: func(t *testing.T) []byte {
				return makeTar(t,
					ent{name: "s", typ: tar.TypeSymlink, link: "nowhere"},
					ent{name: "h", typ: tar.TypeLink, link: "s"},
				)
			},
			wantErr: ErrUnsafeEntry,
			wantMsg: "not a regular file earlier in the archive",
		},
		{
			name: "character device",
			archive: func(t *testing.T) []byte {
				return makeTar(t, ent{name: "dev/null", typ: tar.TypeChar})
			},
			wantErr: ErrUnsafeEntry,
			wantMsg: `entry "dev/null" is a character device`,
		},
		{
			name:    "block device",
			archive: func(t *testing.T) []byte { return makeTar(t, ent{name: "sda", typ: tar.TypeBlock}) },
			wantErr: ErrUnsafeEntry,
		},
		{
			name:    "fifo",
			archive: func(t *testing.T) []byte { return makeTar(t, ent{name: "p", typ: tar.TypeFifo}) },
			wantErr: ErrUnsafeEntry,
			wantMsg: "named pipe",
		},
		{
			name: "bomb over the byte cap",
			archive: func(t *testing.T) []byte {
				return gz(t, makeTar(t, ent{name: "zeros", size: 2 << 20}))
			},
			limits:  small,
			wantErr: ErrTooLarge,
			wantMsg: `entry "zeros" makes the model larger than the limit of 1048576 bytes`,
			check: func(t *testing.T, dest string) {
				fi, err := os.Stat(filepath.Join(dest, "zeros"))
				if err == nil && fi.Size() > small.MaxBytes+1 {
					t.Errorf("wrote %d bytes past a cap of %d", fi.Size(), small.MaxBytes)
				}
			},
		},
		{
			name: "bytes add up across files",
			archive: func(t *testing.T) []byte {
				return makeTar(t, ent{name: "a", size: 600 << 10}, ent{name: "b", size: 600 << 10})
			},
			limits:  small,
			wantErr: ErrTooLarge,
			wantMsg: `entry "b"`,
		},
		{
			name: "too many files",
			archive: func(t *testing.T) []byte {
				var ents []ent
				for i := range 11 {
					ents = append(ents, ent{name: strings.Repeat("f", i+1), body: "x"})
				}
				return makeTar(t, ents...)
			},
			limits:  small,
			wantErr: ErrTooLarge,
			wantMsg: "exceeds the limit of 10 files",
		},
		{
			name: "implied directories count as files",
			archive: func(t *testing.T) []byte {
				return makeTar(t, ent{name: "a/b/c/d/e/f/g/h/i/j/k/l", body: "x"})
			},
			limits:  small,
			wantErr: ErrTooLarge,
		},
		{
			name:    "not a tar",
			archive: func(t *testing.T) []byte { return bytes.Repeat([]byte("not a tar file\n"), 100) },
			wantErr: ErrNotArchive,
		},
		{
			name:    "short non-tar",
			archive: func(t *testing.T) []byte { return []byte("hello") },
			wantErr: ErrNotArchive,
		},
		{
			name:    "gzip of a non-tar",
			archive: func(t *testing.T) []byte { return gz(t, []byte("{\"just\": \"json\"}")) },
			wantErr: ErrNotArchive,
		},
		{
			name:    "empty input",
			archive: func(t *testing.T) []byte { return nil },
			wantErr: ErrNotArchive,
			wantMsg: "empty",
		},
		{
			name:    "zip file",
			archive: func(t *testing.T) []byte { return []byte("PK\x03\x04rest of a zip") },
			wantErr: ErrNotArchive,
			wantMsg: "zip",
		},
		{
			name: "truncated gzip",
			archive: func(t *testing.T) []byte {
				b := gz(t, makeTar(t, ent{name: "a", body: strings.Repeat("data", 1000)}))
				return b[:len(b)-6]
			},
			wantMsg: "unexpected EOF",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "model")
			err := unpack(bytes.NewReader(tt.archive(t)), dest, tt.limits, false)
			switch {
			case tt.wantErr == nil && tt.wantMsg == "" && err != nil:
				t.Fatalf("Unpack: %v", err)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("Unpack error = %v, want %v", err, tt.wantErr)
			case tt.wantMsg != "" && (err == nil || !strings.Contains(err.Error(), tt.wantMsg)):
				t.Fatalf("Unpack error = %v, want it to contain %q", err, tt.wantMsg)
			}
			if tt.check != nil {
				tt.check(t, dest)
			}
			assertContained(t, filepath.Dir(dest), dest)
		})
	}
}

func wantFile(t *testing.T, dest, name, content string, perm fs.FileMode) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dest, filepath.FromSlash(name)))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	if string(b) != content {
		t.Errorf("%s = %q, want %q", name, b, content)
	}
	wantMode(t, dest, name, perm)
}

func wantMode(t *testing.T, dest, name string, mode fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(filepath.Join(dest, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != mode {
		t.Errorf("%s mode = %v, want %v", name, fi.Mode(), mode)
	}
}

// assertContained checks that parent holds nothing but dest, and that
// nothing under dest is special, privileged or a link leading outside.
func assertContained(t testing.TB, parent, dest string) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if filepath.Join(parent, e.Name()) != dest {
			t.Errorf("Unpack created %q outside dest", e.Name())
		}
	}
	realDest, err := filepath.EvalSymlinks(dest)
	if err != nil {
		return // dest was never created: nothing to check
	}
	filepath.WalkDir(dest, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Errorf("walk %s: %v", p, err)
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			t.Errorf("stat %s: %v", p, err)
			return nil
		}
		m := fi.Mode()
		switch {
		case m&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0:
			t.Errorf("%s has mode %v", p, m)
		case m&fs.ModeSymlink != 0:
			base := realDest
			resolved, err := filepath.EvalSymlinks(p)
			if err != nil {
				target, _ := os.Readlink(p)
				resolved = filepath.Join(filepath.Dir(p), target) // dangling: judge lexically
				base = dest
			}
			if !within(base, resolved) {
				t.Errorf("symlink %s resolves to %s, outside %s", p, resolved, dest)
			}
		case !m.IsRegular() && !m.IsDir():
			t.Errorf("%s has special mode %v", p, m)
		}
		return nil
	})
}

func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && filepath.IsLocal(rel) || rel == "."
}
