package disk

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-io/berth/internal/objstore"
)

// FuzzKeyPath checks that every valid key maps to a path inside its
// bucket directory made of safe components, and that the path decodes
// back to the key (so two keys never share a file).
func FuzzKeyPath(f *testing.F) {
	for _, seed := range []string{
		"a", "..", ".", "../../etc/passwd", "/abs", "a/../../b", "a//b", "trailing/",
		"nul\x00byte", `back\slash`, "C:\\windows", "ünï/日本", "%2e%2e/x", "o%41",
		strings.Repeat("x", 31), strings.Repeat("x", 32), strings.Repeat("x", 33),
		strings.Repeat("/", 64), strings.Repeat("..", 512), strings.Repeat("🦀", 256),
	} {
		f.Add(seed)
	}
	root := filepath.FromSlash("/srv/berth/objects")
	bucketDir := filepath.Join(root, "bucket")
	f.Fuzz(func(t *testing.T, key string) {
		if objstore.ValidateKey(key) != nil {
			return
		}
		comps := keyComponents(key)
		var decoded strings.Builder
		for i, c := range comps {
			if c == "" || c == "." || c == ".." || len(c) > 255 {
				t.Fatalf("key %q: unsafe component %q", key, c)
			}
			if strings.ContainsAny(c, "/\\\x00:") || strings.ToLower(c) != c {
				t.Fatalf("key %q: component %q has a separator, NUL, colon or upper case", key, c)
			}
			chunk, dir, ok := parseEntry(c)
			if !ok {
				t.Fatalf("key %q: component %q does not parse", key, c)
			}
			if dir != (i < len(comps)-1) {
				t.Fatalf("key %q: component %q has the wrong kind", key, c)
			}
			decoded.WriteString(chunk)
		}
		if decoded.String() != key {
			t.Fatalf("key %q decodes to %q", key, decoded.String())
		}
		path := filepath.Join(bucketDir, keyRelPath(key))
		rel, err := filepath.Rel(bucketDir, path)
		if err != nil || rel == "." || strings.HasPrefix(rel, "..") || filepath.IsAbs(rel) {
			t.Fatalf("key %q maps to %q, outside %q", key, path, bucketDir)
		}
		if filepath.Clean(path) != path {
			t.Fatalf("key %q maps to unclean path %q", key, path)
		}
	})
}

// FuzzDecodeChunk checks that decoding accepts only canonical names, so a
// file name stands for at most one key chunk.
func FuzzDecodeChunk(f *testing.F) {
	for _, seed := range []string{"abc", "%41", "%4", "%zz", "%61", "a%2fb", "%ff%fe", "UP"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		chunk, err := decodeChunk(name)
		if err != nil {
			return
		}
		if enc := encodeChunk(chunk); enc != name {
			t.Fatalf("%q decodes to %q which encodes to %q", name, chunk, enc)
		}
	})
}
