package h1

import (
	"bytes"
	"errors"
)

// Field is one header field; Name and Value point into a connection's
// buffer and are valid only as long as the request or response they came
// from. Value has surrounding whitespace removed.
type Field struct {
	Name, Value []byte
}

var (
	// errBareLF: a line ended in LF without CR.
	errBareLF = errors.New("bare lf in header block")
	// errMalformed: a start line or header line that does not parse.
	errMalformed = errors.New("malformed header")
)

// Bit sets of RFC 9110 token characters (tchar), for bytes 0–63 and 64–127.
const (
	tcharLo uint64 = 0x3ff6cfa00000000
	tcharHi uint64 = 0x57ffffffc7fffffe
)

func isTchar(c byte) bool {
	if c < 64 {
		return tcharLo&(1<<c) != 0
	}
	if c < 128 {
		return tcharHi&(1<<(c-64)) != 0
	}
	return false
}

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

// validFieldValue reports whether v (already trimmed) holds only field-vchar,
// SP, HTAB and obs-text: no control characters, no DEL.
func validFieldValue(v []byte) bool {
	for _, c := range v {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// findHeaderEnd looks for the blank line that ends a header block in b,
// examining only line ends at or after from (earlier ones were checked by a
// previous call). It returns the index just past the blank line, or -1 with
// the offset to resume from when the block is not complete yet. Every LF
// must follow a CR.
func findHeaderEnd(b []byte, from int) (end, resume int, err error) {
	i := from
	for i < len(b) {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return -1, len(b), nil
		}
		i += j
		if i == 0 || b[i-1] != '\r' {
			return -1, i, errBareLF
		}
		// "\r\n\r\n", or a header block that is only "\r\n" after the start
		// line is handled by the start-line parser (an empty start line).
		if i >= 3 && b[i-2] == '\n' && b[i-3] == '\r' {
			return i + 1, i + 1, nil
		}
		i++
	}
	return -1, len(b), nil
}

// nextLine returns the line starting at b[i:] without its CRLF, and the
// index after the CRLF. The caller has checked with findHeaderEnd that
// every LF follows a CR and that a blank line ends the block.
func nextLine(b []byte, i int) (line []byte, next int) {
	j := bytes.IndexByte(b[i:], '\n')
	if j < 0 {
		return nil, -1
	}
	return b[i : i+j-1], i + j + 1
}

// parseField splits one header line into name and trimmed value. A line
// starting with whitespace (obsolete folding), a name that is not a token,
// whitespace before the colon, or a control character in the value is an
// error.
func parseField(line []byte) (name, value []byte, err error) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, errMalformed
	}
	name = line[:colon]
	if !isToken(name) {
		return nil, nil, errMalformed
	}
	v := line[colon+1:]
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	if !validFieldValue(v) {
		return nil, nil, errMalformed
	}
	return name, v, nil
}

// equalFold reports whether b equals the lower-case ASCII string s,
// ignoring ASCII case in b.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// equalFoldBytes is equalFold for a name given in any case.
func equalFoldBytes(a []byte, s string) bool {
	if len(a) != len(s) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// parseContentLength parses a Content-Length value: 1 to 18 decimal
// digits, nothing else.
func parseContentLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// hasToken reports whether the comma-separated list v contains token tok
// (lower case), ignoring ASCII case and optional whitespace.
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var part []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			part, v = v[:i], v[i+1:]
		} else {
			part, v = v, nil
		}
		for len(part) > 0 && (part[0] == ' ' || part[0] == '\t') {
			part = part[1:]
		}
		for len(part) > 0 && (part[len(part)-1] == ' ' || part[len(part)-1] == '\t') {
			part = part[:len(part)-1]
		}
		if equalFold(part, tok) {
			return true
		}
	}
	return false
}

// appendSafe appends s to dst with CR, LF and NUL replaced by spaces, so a
// value cannot end its header line early.
func appendSafe[S ~string | ~[]byte](dst []byte, s S) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' || c == 0 {
			c = ' '
		}
		dst = append(dst, c)
	}
	return dst
}

// AppendHeader appends the header line "name: value\r\n" to dst, for
// Request.Header and FastResponseWriter. CR, LF and NUL in name or value
// are replaced by spaces so that a value taken from a client cannot inject
// another header line.
func AppendHeader[S ~string | ~[]byte](dst []byte, name string, value S) []byte {
	dst = appendSafe(dst, name)
	dst = append(dst, ':', ' ')
	dst = appendSafe(dst, value)
	return append(dst, '\r', '\n')
}
