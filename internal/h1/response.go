package h1

import (
	"bytes"
	"errors"
	"fmt"
)

// respHead is what parseResponseHead extracts from a response header block.
type respHead struct {
	status        int
	http10        bool
	contentLength int64 // -1 when absent
	chunked       bool
	close         bool
	contentType   []byte
	customAttrs   []byte
}

// parseResponseHead parses a complete response header block b (status line,
// fields, blank line; as delimited by findHeaderEnd). It is strict: an
// unknown version, a malformed status line or field, Transfer-Encoding
// other than a single "chunked", Transfer-Encoding together with
// Content-Length, or differing Content-Length values are errors.
func parseResponseHead(b []byte, h *respHead) error {
	*h = respHead{contentLength: -1}
	line, i := nextLine(b, 0)
	if i < 0 {
		return errMalformed
	}
	// "HTTP/1.1 200 OK", reason optional ("HTTP/1.1 200", "HTTP/1.1 200 ").
	if len(line) < 12 || line[8] != ' ' {
		return fmt.Errorf("status line %q: %w", clip(line), errMalformed)
	}
	switch string(line[:8]) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		h.http10 = true
		h.close = true
	default:
		return fmt.Errorf("status line %q: %w", clip(line), errMalformed)
	}
	c0, c1, c2 := line[9], line[10], line[11]
	if c0 < '1' || c0 > '9' || c1 < '0' || c1 > '9' || c2 < '0' || c2 > '9' || len(line) > 12 && line[12] != ' ' {
		return fmt.Errorf("status line %q: %w", clip(line), errMalformed)
	}
	h.status = int(c0-'0')*100 + int(c1-'0')*10 + int(c2-'0')
	if !validFieldValue(line[12:]) {
		return fmt.Errorf("status line %q: %w", clip(line), errMalformed)
	}
	var sawTE bool
	for {
		line, i = nextLine(b, i)
		if i < 0 {
			return errMalformed
		}
		if len(line) == 0 {
			break
		}
		name, value, err := parseField(line)
		if err != nil {
			return fmt.Errorf("header line %q: %w", clip(line), err)
		}
		switch len(name) {
		case 10:
			if equalFold(name, "connection") {
				if hasToken(value, "close") {
					h.close = true
				}
			}
		case 12:
			if equalFold(name, "content-type") && h.contentType == nil {
				h.contentType = value
			}
		case 14:
			if equalFold(name, "content-length") {
				n, ok := parseContentLength(value)
				if !ok {
					return fmt.Errorf("content-length %q: %w", clip(value), errMalformed)
				}
				if h.contentLength >= 0 && h.contentLength != n {
					return errors.New("differing content-length values")
				}
				h.contentLength = n
			}
		case 17:
			if equalFold(name, "transfer-encoding") {
				if sawTE || !equalFold(value, "chunked") {
					return fmt.Errorf("unsupported transfer-encoding %q", clip(value))
				}
				sawTE = true
				h.chunked = true
			}
		case 34:
			if equalFold(name, "x-amzn-sagemaker-custom-attributes") && h.customAttrs == nil {
				h.customAttrs = value
			}
		}
	}
	if h.chunked && h.contentLength >= 0 {
		return errors.New("both content-length and transfer-encoding")
	}
	if h.chunked && h.http10 {
		return errors.New("transfer-encoding in an http/1.0 response")
	}
	return nil
}

// clip shortens b for an error message.
func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// visitFields calls fn for every header field of the complete header block
// b (start line first, which is skipped).
func visitFields(b []byte, fn func(name, value []byte)) {
	_, i := nextLine(b, 0)
	for i >= 0 {
		var line []byte
		line, i = nextLine(b, i)
		if i < 0 || len(line) == 0 {
			return
		}
		if name, value, err := parseField(line); err == nil {
			fn(name, value)
		}
	}
}

// lookupField returns the first value of the named field in header block b.
func lookupField(b []byte, name string) []byte {
	_, i := nextLine(b, 0)
	for i >= 0 {
		var line []byte
		line, i = nextLine(b, i)
		if i < 0 || len(line) == 0 {
			return nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon == len(name) && equalFoldBytes(line[:colon], name) {
			if _, v, err := parseField(line); err == nil {
				return v
			}
		}
	}
	return nil
}
