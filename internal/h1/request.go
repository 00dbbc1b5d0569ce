package h1

import (
	"bytes"
	"net"
)

// FastRequest is a request the fast path serves. Its byte slices point into
// the connection's buffers and are valid only until Handle returns.
type FastRequest struct {
	// Method is the request method, e.g. "POST".
	Method []byte
	// Target is the request-target as sent (path and query).
	Target []byte
	// Path is Target up to '?'; Query what follows it (no '?').
	Path, Query []byte
	// Header holds every header field in the order received.
	Header []Field
	// ContentLength is the Content-Length value, -1 if absent (no body).
	ContentLength int64
	// Body is the request body (empty when ContentLength ≤ 0).
	Body []byte
	// RemoteAddr is the client's address.
	RemoteAddr net.Addr

	close bool // Connection: close
}

// HeaderValue returns the first value of the named header field (any
// case), nil if absent.
func (r *FastRequest) HeaderValue(name string) []byte {
	for i := range r.Header {
		if equalFoldBytes(r.Header[i].Name, name) {
			return r.Header[i].Value
		}
	}
	return nil
}

// parseRequestHead parses a complete request header block b (as delimited
// by findHeaderEnd) into req and reports whether the fast path may take it:
// a well-formed HTTP/1.1 request with exactly one Host, at most one
// Content-Length, and no Transfer-Encoding, Expect or Upgrade. Anything
// else — including everything malformed — is for net/http to answer.
func parseRequestHead(b []byte, req *FastRequest) bool {
	hdr := req.Header[:0]
	*req = FastRequest{ContentLength: -1, Header: hdr}
	line, i := nextLine(b, 0)
	if i < 0 {
		return false
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 {
		return false
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return false
	}
	req.Method, req.Target = line[:sp1], rest[:sp2]
	if string(rest[sp2+1:]) != "HTTP/1.1" || !isToken(req.Method) {
		return false
	}
	// origin-form only: "/" followed by visible ASCII.
	if req.Target[0] != '/' {
		return false
	}
	for _, c := range req.Target {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	req.Path, req.Query = req.Target, nil
	if q := bytes.IndexByte(req.Target, '?'); q >= 0 {
		req.Path, req.Query = req.Target[:q], req.Target[q+1:]
	}
	if !validEscapes(req.Path) {
		return false // net/http cannot unescape it and answers 400
	}
	hosts := 0
	for {
		line, i = nextLine(b, i)
		if i < 0 {
			return false
		}
		if len(line) == 0 {
			break
		}
		name, value, err := parseField(line)
		if err != nil {
			return false
		}
		switch len(name) {
		case 4:
			if equalFold(name, "host") {
				hosts++
				if !validHost(value) {
					return false
				}
			}
		case 6:
			if equalFold(name, "expect") {
				return false
			}
		case 7:
			if equalFold(name, "upgrade") {
				return false
			}
		case 10:
			if equalFold(name, "connection") {
				if hasToken(value, "upgrade") {
					return false
				}
				if hasToken(value, "close") {
					req.close = true
				}
			}
		case 14:
			if equalFold(name, "content-length") {
				if req.ContentLength >= 0 {
					return false // duplicates: net/http decides
				}
				n, ok := parseContentLength(value)
				if !ok {
					return false
				}
				req.ContentLength = n
			}
		case 17:
			if equalFold(name, "transfer-encoding") {
				return false
			}
		}
		hdr = append(hdr, Field{Name: name, Value: value})
	}
	req.Header = hdr
	return hosts == 1
}

// validHost accepts the characters of a reg-name, IPv4 or bracketed IPv6
// host with an optional port — what net/http's Host check accepts, minus
// the rarer sub-delims.
func validHost(v []byte) bool {
	for _, c := range v {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_':
		default:
			return false
		}
	}
	return true
}

// validEscapes reports whether every '%' in p starts a %XX escape.
func validEscapes(p []byte) bool {
	for i := 0; i < len(p); i++ {
		if p[i] == '%' {
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
