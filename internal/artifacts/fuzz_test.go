package artifacts

import (
	"archive/tar"
	"bytes"
	"path/filepath"
	"testing"
)

// FuzzUnpack checks that no input makes Unpack panic, write outside dest,
// or leave a special file, a privileged mode or an escaping link in it.
func FuzzUnpack(f *testing.F) {
	seeds := [][]byte{
		makeTar(f, ent{name: "model.json", body: "{}"}, ent{name: "code/run.sh", body: "#!/bin/sh", mode: 0o755}),
		gz(f, makeTar(f, ent{name: "a/b/c.bin", body: "abc"}, ent{name: "a/", typ: tar.TypeDir})),
		makeTar(f, ent{name: "../x", body: "evil"}),
		makeTar(f, ent{name: "/abs", body: "evil"}),
		makeTar(f, ent{name: "l", typ: tar.TypeSymlink, link: "../.."}, ent{name: "l/x", body: "evil"}),
		makeTar(f, ent{name: "d/b", typ: tar.TypeSymlink, link: ".."}, ent{name: "l", typ: tar.TypeSymlink, link: "d/b/.."}),
		makeTar(f, ent{name: "x", typ: tar.TypeSymlink, link: "."}, ent{name: "x/up", typ: tar.TypeSymlink, link: ".."}),
		makeTar(f, ent{name: "f", body: "1"}, ent{name: "h", typ: tar.TypeLink, link: "f"}, ent{name: "h2", typ: tar.TypeLink, link: "../f"}),
		makeTar(f, ent{name: "dev", typ: tar.TypeChar}),
		gz(f, makeTar(f, ent{name: "zeros", size: 64 << 10})),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, archive []byte) {
		parent := t.TempDir()
		dest := filepath.Join(parent, "model")
		_ = unpack(bytes.NewReader(archive), dest, Limits{MaxBytes: 32 << 10, MaxFiles: 64}, false)
		assertContained(t, parent, dest)
	})
}
