package sigv4

import (
	"bytes"
	"encoding/hex"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the only signing algorithm accepted.
const Algorithm = "AWS4-HMAC-SHA256"

// MaxPresignExpiry is the longest X-Amz-Expires AWS accepts: seven days.
const MaxPresignExpiry = 7 * 24 * time.Hour

// Auth is a parsed signature, from an Authorization header or a presigned
// query string. Its slices point into the parsed input.
type Auth struct {
	// AccessKey is the access key id of the credential.
	AccessKey []byte
	// Scope is the credential scope, "<date>/<region>/<service>/aws4_request".
	Scope []byte
	// Date, Region and Service are the parts of Scope.
	Date, Region, Service []byte
	// SignedHeaders is the ";"-separated list of signed header names,
	// lower case, as sent.
	SignedHeaders []byte
	// Signature is the decoded signature.
	Signature [32]byte
	// Presigned marks a signature taken from the query string; AmzDate
	// and Expires then come from the query too.
	Presigned bool
	// AmzDate is X-Amz-Date of a presigned request ("20060102T150405Z").
	AmzDate []byte
	// Expires is X-Amz-Expires of a presigned request.
	Expires time.Duration
}

// ParseAuthorization parses an "AWS4-HMAC-SHA256 Credential=...,
// SignedHeaders=..., Signature=..." header value.
func ParseAuthorization(v []byte) (Auth, error) {
	var a Auth
	alg, rest, ok := bytes.Cut(bytes.TrimSpace(v), []byte(" "))
	if !ok {
		return a, fail(Malformed, "authorization header requires Credential, SignedHeaders and Signature, separated by commas")
	}
	if string(alg) != Algorithm {
		return a, errAlgorithm
	}
	var haveCred, haveHeaders, haveSig bool
	for len(rest) > 0 {
		var part []byte
		if i := bytes.IndexByte(rest, ','); i >= 0 {
			part, rest = rest[:i], rest[i+1:]
		} else {
			part, rest = rest, nil
		}
		part = bytes.TrimSpace(part)
		name, value, ok := bytes.Cut(part, []byte("="))
		if !ok {
			return a, fail(Malformed, "authorization header component without '=': "+safeString(part))
		}
		switch string(name) {
		case "Credential":
			if haveCred {
				return a, fail(Malformed, "authorization header repeats Credential")
			}
			if err := a.setCredential(value); err != nil {
				return a, err
			}
			haveCred = true
		case "SignedHeaders":
			if haveHeaders {
				return a, fail(Malformed, "authorization header repeats SignedHeaders")
			}
			if err := checkSignedHeaders(value); err != nil {
				return a, err
			}
			a.SignedHeaders, haveHeaders = value, true
		case "Signature":
			if haveSig {
				return a, fail(Malformed, "authorization header repeats Signature")
			}
			if err := decodeSignature(&a.Signature, value); err != nil {
				return a, err
			}
			haveSig = true
		default:
			return a, fail(Malformed, "unknown authorization header component: "+safeString(name))
		}
	}
	if !haveCred || !haveHeaders || !haveSig {
		return a, fail(Malformed, "authorization header requires Credential, SignedHeaders and Signature")
	}
	return a, nil
}

// setCredential parses "<access key>/<date>/<region>/<service>/aws4_request".
func (a *Auth) setCredential(v []byte) error {
	key, scope, ok := bytes.Cut(v, []byte("/"))
	if !ok || len(key) == 0 {
		return fail(Malformed, "credential must have the form <access key>/<date>/<region>/<service>/aws4_request")
	}
	date, rest, ok1 := bytes.Cut(scope, []byte("/"))
	region, rest, ok2 := bytes.Cut(rest, []byte("/"))
	service, term, ok3 := bytes.Cut(rest, []byte("/"))
	if !ok1 || !ok2 || !ok3 || string(term) != "aws4_request" || len(region) == 0 || len(service) == 0 {
		return fail(Malformed, "credential must have the form <access key>/<date>/<region>/<service>/aws4_request")
	}
	if len(date) != 8 || !allDigits(date) {
		return fail(Malformed, "credential date must be eight digits (yyyyMMdd)")
	}
	a.AccessKey, a.Scope, a.Date, a.Region, a.Service = key, scope, date, region, service
	return nil
}

// checkSignedHeaders accepts a non-empty ";"-separated list of lower-case
// header names.
func checkSignedHeaders(v []byte) error {
	if len(v) == 0 {
		return fail(Malformed, "SignedHeaders is empty")
	}
	start := 0
	for i := 0; i <= len(v); i++ {
		if i == len(v) || v[i] == ';' {
			if i == start {
				return fail(Malformed, "SignedHeaders has an empty header name")
			}
			start = i + 1
			continue
		}
		c := v[i]
		if c >= 'A' && c <= 'Z' || !isTokenChar(c) {
			return fail(Malformed, "SignedHeaders must list lower-case header names separated by ';'")
		}
	}
	return nil
}

func decodeSignature(dst *[32]byte, v []byte) error {
	if len(v) != 64 {
		return fail(Malformed, "signature must be 64 hexadecimal digits")
	}
	if _, err := hex.Decode(dst[:], v); err != nil {
		return fail(Malformed, "signature must be 64 hexadecimal digits")
	}
	return nil
}

// Presigned query parameters.
const (
	qAlgorithm     = "X-Amz-Algorithm"
	qCredential    = "X-Amz-Credential"
	qDate          = "X-Amz-Date"
	qExpires       = "X-Amz-Expires"
	qSignedHeaders = "X-Amz-SignedHeaders"
	qSignature     = "X-Amz-Signature"
)

// IsPresigned reports whether a raw query string carries a presigned
// signature (an X-Amz-Signature or X-Amz-Credential parameter).
func IsPresigned(rawQuery string) bool {
	return strings.Contains(rawQuery, qSignature+"=") || strings.Contains(rawQuery, qCredential+"=")
}

// ParsePresigned parses the signature parameters of a presigned query
// string (raw, without '?').
func ParsePresigned(rawQuery string) (Auth, error) {
	var a Auth
	a.Presigned = true
	var alg, cred, date, expires, headers, sig string
	seen := 0
	for rawQuery != "" {
		var kv string
		kv, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, v, _ := strings.Cut(kv, "=")
		var dst *string
		switch k {
		case qAlgorithm:
			dst = &alg
		case qCredential:
			dst = &cred
		case qDate:
			dst = &date
		case qExpires:
			dst = &expires
		case qSignedHeaders:
			dst = &headers
		case qSignature:
			dst = &sig
		default:
			continue
		}
		if *dst != "" {
			return a, fail(Malformed, "presigned query repeats "+k)
		}
		u, err := url.QueryUnescape(v)
		if err != nil || u == "" {
			return a, fail(Malformed, "presigned query parameter "+k+" is empty or badly escaped")
		}
		*dst = u
		seen++
	}
	if seen != 6 {
		return a, fail(Malformed, "presigned query requires X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature")
	}
	if alg != Algorithm {
		return a, errAlgorithm
	}
	if err := a.setCredential([]byte(cred)); err != nil {
		return a, err
	}
	if err := checkSignedHeaders([]byte(headers)); err != nil {
		return a, err
	}
	a.SignedHeaders = []byte(headers)
	if err := decodeSignature(&a.Signature, []byte(sig)); err != nil {
		return a, err
	}
	if _, ok := ParseAmzDate([]byte(date)); !ok {
		return a, fail(Malformed, "X-Amz-Date must have the form yyyyMMddTHHmmssZ")
	}
	a.AmzDate = []byte(date)
	n, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || n < 1 || time.Duration(n)*time.Second > MaxPresignExpiry {
		return a, fail(Malformed, "X-Amz-Expires must be a number of seconds from 1 to 604800")
	}
	a.Expires = time.Duration(n) * time.Second
	return a, nil
}

// ParseAmzDate parses the ISO 8601 basic form "20060102T150405Z" without
// allocating.
func ParseAmzDate(v []byte) (time.Time, bool) {
	if len(v) != 16 || v[8] != 'T' || v[15] != 'Z' || !allDigits(v[:8]) || !allDigits(v[9:15]) {
		return time.Time{}, false
	}
	num := func(b []byte) int {
		n := 0
		for _, c := range b {
			n = n*10 + int(c-'0')
		}
		return n
	}
	y, mo, d := num(v[0:4]), num(v[4:6]), num(v[6:8])
	h, mi, s := num(v[9:11]), num(v[11:13]), num(v[13:15])
	if mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, s, 0, time.UTC)
	if t.Day() != d { // 31 February and the like
		return time.Time{}, false
	}
	return t, true
}

// ParseChunkHeader parses the header line of one aws-chunked chunk,
// without its CRLF: "<hex size>;chunk-signature=<64 hex digits>".
func ParseChunkHeader(line []byte, sig *[32]byte) (int64, error) {
	sizeHex, ext, ok := bytes.Cut(line, []byte(";"))
	if !ok || len(sizeHex) == 0 || len(sizeHex) > 15 {
		return 0, fail(BadChunk, "chunk header must be <hex size>;chunk-signature=<signature>")
	}
	var size int64
	for _, c := range sizeHex {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, fail(BadChunk, "chunk size is not hexadecimal")
		}
		size = size<<4 | int64(d)
	}
	v, ok := bytes.CutPrefix(ext, []byte("chunk-signature="))
	if !ok {
		return 0, fail(BadChunk, "chunk header must be <hex size>;chunk-signature=<signature>")
	}
	if err := decodeSignature(sig, v); err != nil {
		return 0, fail(BadChunk, "chunk signature must be 64 hexadecimal digits")
	}
	return size, nil
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// isTokenChar reports whether c may appear in an HTTP header name.
func isTokenChar(c byte) bool { return tokenChars[c] }

// tokenChars: checked for every byte of SignedHeaders on every request.
var tokenChars = func() (t [256]bool) {
	for c := range 256 {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			t[c] = true
		}
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

// safeString quotes at most 64 bytes of client input for an error message.
func safeString(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return strconv.Quote(string(b))
}
