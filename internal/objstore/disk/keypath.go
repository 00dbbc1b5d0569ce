package disk

import (
	"errors"
	"path/filepath"
	"strings"
)

// Object keys never reach the file system as they are. A key is cut into
// chunks of chunkLen bytes; every chunk but the last names a directory
// ("c" + encoded chunk) and the last names the object file ("o" + encoded
// chunk). Encoding keeps only [a-z0-9._-] and writes every other byte as
// "%" and two lower-case hex digits, so a path component is always
// non-empty, never "." or "..", free of separators and NUL, safe on
// case-insensitive file systems and at most 1+3*chunkLen bytes long.
//
// Cutting at fixed lengths rather than at "/" keeps listing simple: within
// one directory the subtrees cover disjoint ranges of keys, so walking the
// entries in order of their decoded chunks (a file before the directory
// with the same chunk) yields keys in byte order.
const (
	chunkLen   = 32
	dirMark    = 'c'
	objectMark = 'o'
)

// keyComponents returns the path components, relative to the bucket
// directory, of the file that holds key. key must be valid.
func keyComponents(key string) []string {
	comps := make([]string, 0, len(key)/chunkLen+1)
	for len(key) > chunkLen {
		comps = append(comps, string(dirMark)+encodeChunk(key[:chunkLen]))
		key = key[chunkLen:]
	}
	return append(comps, string(objectMark)+encodeChunk(key))
}

// keyRelPath returns the path of the file holding key relative to the
// bucket directory.
func keyRelPath(key string) string {
	return filepath.Join(keyComponents(key)...)
}

func plainByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}

const hexDigits = "0123456789abcdef"

func encodeChunk(s string) string {
	var b strings.Builder
	b.Grow(len(s) * 3)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plainByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
	return b.String()
}

var errBadName = errors.New("not an encoded key chunk")

// decodeChunk reverses encodeChunk. It accepts only the canonical form
// encodeChunk produces, so a name decodes to at most one chunk.
func decodeChunk(name string) (string, error) {
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		if plainByte(c) {
			b.WriteByte(c)
			continue
		}
		if c != '%' || i+2 >= len(name) {
			return "", errBadName
		}
		hi, lo := unhex(name[i+1]), unhex(name[i+2])
		if hi < 0 || lo < 0 {
			return "", errBadName
		}
		v := byte(hi<<4 | lo)
		if plainByte(v) {
			return "", errBadName
		}
		b.WriteByte(v)
		i += 2
	}
	return b.String(), nil
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// parseEntry decodes one directory entry name of a bucket tree. ok is
// false for names that are not part of the tree (temporary or foreign
// files).
func parseEntry(name string) (chunk string, dir bool, ok bool) {
	if name == "" {
		return "", false, false
	}
	mark := name[0]
	if mark != dirMark && mark != objectMark {
		return "", false, false
	}
	chunk, err := decodeChunk(name[1:])
	if err != nil {
		return "", false, false
	}
	if mark == dirMark && len(chunk) != chunkLen {
		return "", false, false
	}
	if mark == objectMark && (len(chunk) > chunkLen || chunk == "") {
		return "", false, false
	}
	return chunk, mark == dirMark, true
}
