package sigv4

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-io/berth/internal/h1"
)

// DefaultMaxSkew is how far a request's time may be from the server's, as
// AWS allows.
const DefaultMaxSkew = 15 * time.Minute

// UnsignedPayload is the payload hash of a request whose body is not
// signed (S3 only).
const UnsignedPayload = "UNSIGNED-PAYLOAD"

// StreamingPayload is the payload hash of an aws-chunked body whose chunks
// are signed one by one.
const StreamingPayload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"

// EmptySHA256 is the hex SHA-256 of an empty body.
const EmptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// Credential is one access key pair.
type Credential struct {
	AccessKeyID     string
	SecretAccessKey string
}

// Options tunes a Verifier.
type Options struct {
	// MaxSkew is how far the request time may be from now; DefaultMaxSkew
	// when zero.
	MaxSkew time.Duration
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
}

// Verifier checks SigV4 signatures against a fixed set of credentials. It
// is safe for concurrent use.
type Verifier struct {
	keys    map[string]*secret
	now     func() time.Time
	maxSkew time.Duration
}

// secret is one credential's secret with its derived signing keys.
type secret struct {
	kSecret []byte // "AWS4" + secret access key
	// derived is a small copy-on-write list of signing keys, one per
	// (date, region, service) seen; readers take no lock.
	derived atomic.Pointer[[]signingKey]
	mu      sync.Mutex // serialises writers of derived
}

type signingKey struct {
	date            [8]byte
	region, service string
	key             [32]byte
}

// maxDerived bounds the signing keys cached per credential: a client uses
// a handful of (region, service) pairs a day.
const maxDerived = 16

// New returns a Verifier for creds. It returns an error for an empty
// access key id or secret, or an access key id given twice.
func New(creds []Credential, opts Options) (*Verifier, error) {
	v := &Verifier{keys: make(map[string]*secret, len(creds)), now: opts.Now, maxSkew: opts.MaxSkew}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxSkew <= 0 {
		v.maxSkew = DefaultMaxSkew
	}
	for _, c := range creds {
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return nil, errors.New("sigv4: a credential needs both an access key id and a secret access key")
		}
		if strings.ContainsAny(c.AccessKeyID, "/ ,=") {
			return nil, errors.New("sigv4: access key id " + c.AccessKeyID + " contains '/', ',', '=' or a space")
		}
		if _, dup := v.keys[c.AccessKeyID]; dup {
			return nil, errors.New("sigv4: access key id " + c.AccessKeyID + " is given twice")
		}
		v.keys[c.AccessKeyID] = &secret{kSecret: []byte("AWS4" + c.SecretAccessKey)}
	}
	return v, nil
}

// key returns the signing key for the scope of a, derived on first use.
func (s *secret) key(a *Auth) [32]byte {
	if list := s.derived.Load(); list != nil {
		for i := range *list {
			k := &(*list)[i]
			if string(k.date[:]) == string(a.Date) && k.region == string(a.Region) && k.service == string(a.Service) {
				return k.key
			}
		}
	}
	var k signingKey
	copy(k.date[:], a.Date)
	k.region, k.service = string(a.Region), string(a.Service)
	h := hmacSum(s.kSecret, a.Date)
	h = hmacSum(h, a.Region)
	h = hmacSum(h, a.Service)
	copy(k.key[:], hmacSum(h, []byte("aws4_request")))
	s.mu.Lock()
	var next []signingKey
	if list := s.derived.Load(); list != nil {
		next = append(next, *list...)
	}
	if len(next) >= maxDerived {
		next = next[1:]
	}
	next = append(next, k)
	s.derived.Store(&next)
	s.mu.Unlock()
	return k.key
}

func hmacSum(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// Request is a request as received, for verification. Its slices are not
// modified.
type Request struct {
	// Method is the request method.
	Method []byte
	// Path is the request path as sent, still escaped.
	Path []byte
	// Query is the raw query string, without '?'.
	Query []byte
	// Header holds every header field as received, Host included.
	Header []h1.Field
}

// HeaderValue returns the first value of the named header (any case), nil
// when absent.
func (r *Request) HeaderValue(name string) []byte {
	for i := range r.Header {
		if equalFold(r.Header[i].Name, name) {
			return r.Header[i].Value
		}
	}
	return nil
}

// FromHTTP converts a server-side *http.Request (whose Host header lives
// in r.Host and whose path may have been rewritten) into a Request, from
// the request line as received (r.RequestURI).
func FromHTTP(r *http.Request) *Request {
	req := &Request{Method: []byte(r.Method)}
	target := r.RequestURI
	if target == "" {
		target = r.URL.RequestURI()
	}
	p, q, _ := strings.Cut(target, "?")
	req.Path, req.Query = []byte(p), []byte(q)
	n := 1
	for _, vs := range r.Header {
		n += len(vs)
	}
	req.Header = make([]h1.Field, 0, n)
	req.Header = append(req.Header, h1.Field{Name: []byte("host"), Value: []byte(r.Host)})
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header = append(req.Header, h1.Field{Name: []byte(k), Value: []byte(v)})
		}
	}
	return req
}

// errPresignedV2 is what Parse returns for a version 2 presigned URL:
// verify it with VerifyPresignedV2.
var errPresignedV2 = fail(Malformed, "signature version 2 is accepted for presigned S3 URLs only")

// IsPresignedV2Error reports whether err is Parse's answer to a request
// presigned with signature version 2.
func IsPresignedV2Error(err error) bool { return err == errPresignedV2 }

// Signed is a verified signature: what verifying an aws-chunked body
// needs. Its slices point into the request.
type Signed struct {
	// AccessKey is the access key id that signed the request.
	AccessKey []byte
	// AmzDate is the request time as signed, Scope the credential scope.
	AmzDate, Scope []byte
	// Key is the signing key, Signature the request's (seed) signature.
	Key, Signature [32]byte
}

// Parse returns the signature a request carries: from its Authorization
// header, or from its query string when presigned. A request with neither
// fails with code Missing.
func Parse(req *Request) (Auth, error) {
	if v := req.HeaderValue("Authorization"); v != nil {
		return ParseAuthorization(v)
	}
	if len(req.Query) > 0 && IsPresigned(string(req.Query)) {
		return ParsePresigned(string(req.Query))
	}
	if len(req.Query) > 0 && IsPresignedV2(string(req.Query)) {
		return Auth{}, errPresignedV2
	}
	return Auth{}, errMissing
}

// Verify checks the signature a of req. payloadHash is the last line of
// the canonical request: the x-amz-content-sha256 value the client sent,
// or the hex SHA-256 of the body for services that sign the body without
// sending it, or UnsignedPayload for presigned S3 requests. The caller
// checks that the body matches it (see NewHashReader, NewChunkedReader).
func (v *Verifier) Verify(req *Request, a *Auth, payloadHash []byte) (Signed, error) {
	var sg Signed
	sec, amzDate, err := v.check(req, a)
	if err != nil {
		return sg, err
	}
	if err := checkSignedHeaderSet(req, a); err != nil {
		return sg, err
	}
	key := sec.key(a)

	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	b := s.canonical(req, a, payloadHash)
	crHash := sha256.Sum256(b)
	b = append(b[:0], Algorithm...)
	b = append(b, '\n')
	b = append(b, amzDate...)
	b = append(b, '\n')
	b = append(b, a.Scope...)
	b = append(b, '\n')
	b = hex.AppendEncode(b, crHash[:])
	s.buf = b
	want := s.hmac(&key, b)
	if subtle.ConstantTimeCompare(want[:], a.Signature[:]) != 1 {
		return sg, errMismatch
	}
	sg.AccessKey, sg.AmzDate, sg.Scope, sg.Key, sg.Signature = a.AccessKey, amzDate, a.Scope, key, a.Signature
	return sg, nil
}

// Check does what Verify does before it needs the payload: the access
// key is known and the request time is within the allowed skew (or the
// presigned URL has not expired). A server can refuse a request that
// fails it before reading a body.
func (v *Verifier) Check(req *Request, a *Auth) error {
	_, _, err := v.check(req, a)
	return err
}

// check returns the secret of a's access key and the request time as
// signed.
func (v *Verifier) check(req *Request, a *Auth) (*secret, []byte, error) {
	sec, ok := v.keys[string(a.AccessKey)]
	if !ok {
		return nil, nil, errUnknown
	}
	now := v.now()
	amzDate := a.AmzDate
	var t time.Time
	if a.Presigned {
		t, _ = ParseAmzDate(amzDate)
		if t.After(now.Add(v.maxSkew)) {
			return nil, nil, fail(Skewed, "request is not yet valid: X-Amz-Date is in the future")
		}
		if now.After(t.Add(a.Expires)) {
			return nil, nil, errExpired
		}
	} else {
		amzDate = req.HeaderValue("X-Amz-Date")
		if amzDate == nil {
			return nil, nil, fail(Malformed, "request must carry an X-Amz-Date header")
		}
		if t, ok = ParseAmzDate(amzDate); !ok {
			return nil, nil, fail(Malformed, "X-Amz-Date must have the form yyyyMMddTHHmmssZ")
		}
		if d := now.Sub(t); d > v.maxSkew || d < -v.maxSkew {
			return nil, nil, errSkewed
		}
	}
	if !bytes.Equal(a.Date, amzDate[:8]) {
		return nil, nil, fail(Malformed, "credential scope date does not match X-Amz-Date")
	}
	return sec, amzDate, nil
}

// checkSignedHeaderSet refuses a signature that leaves out the Host
// header or an x-amz-* header the request carries, as AWS does. Headers
// left out of SignedHeaders can be changed by whoever relays or replays
// the request: without this rule an X-Amz-Target added to a captured
// InvokeEndpoint (which the SDKs sign without one) turns it into a control
// plane call, and an x-amz-copy-source added to a captured PUT turns it
// into a copy of another object.
func checkSignedHeaderSet(req *Request, a *Auth) error {
	if !signedHeadersHave(a.SignedHeaders, []byte("host")) {
		return errHostUnsigned
	}
	for i := range req.Header {
		name := req.Header[i].Name
		if len(name) > len("x-amz-") && equalFold(name[:len("x-amz-")], "x-amz-") && !signedHeadersHave(a.SignedHeaders, name) {
			return fail(Malformed, "header "+safeString(name)+" is present in the request but not signed; sign every x-amz-* header it carries")
		}
	}
	return nil
}

// signedHeadersHave reports whether the ";"-separated list of lower-case
// names holds name (any case).
func signedHeadersHave(list, name []byte) bool {
	for len(list) > 0 {
		n := list
		if i := bytes.IndexByte(list, ';'); i >= 0 {
			n, list = list[:i], list[i+1:]
		} else {
			list = nil
		}
		if equalFoldBytes(n, name) {
			return true
		}
	}
	return false
}

// scratch is pooled working space for one verification.
type scratch struct {
	buf   []byte
	mac   []byte
	pairs [][2]string
}

var scratchPool = sync.Pool{New: func() any { return &scratch{buf: make([]byte, 0, 1024), mac: make([]byte, 0, 512)} }}

// hmac is HMAC-SHA256 over pooled space (crypto/hmac allocates its
// hashes on every call).
func (s *scratch) hmac(key *[32]byte, msg []byte) [32]byte {
	var pad [64]byte
	copy(pad[:], key[:])
	for i := range pad {
		pad[i] ^= 0x36
	}
	s.mac = append(append(s.mac[:0], pad[:]...), msg...)
	inner := sha256.Sum256(s.mac)
	var outer [96]byte
	for i := range pad {
		outer[i] = pad[i] ^ 0x36 ^ 0x5c
	}
	copy(outer[64:], inner[:])
	return sha256.Sum256(outer[:])
}

// canonical builds the canonical request into s.buf and returns it.
func (s *scratch) canonical(req *Request, a *Auth, payloadHash []byte) []byte {
	b := append(s.buf[:0], req.Method...)
	b = append(b, '\n')
	path := req.Path
	if len(path) == 0 {
		path = []byte("/")
	}
	if string(a.Service) == "s3" {
		// S3 signs the path as sent; every other service escapes it
		// once more.
		b = append(b, path...)
	} else {
		b = appendEscaped(b, path, true)
	}
	b = append(b, '\n')
	b = s.appendQuery(b, req.Query, a.Presigned)
	b = append(b, '\n')
	names := a.SignedHeaders
	for len(names) > 0 {
		var name []byte
		if i := bytes.IndexByte(names, ';'); i >= 0 {
			name, names = names[:i], names[i+1:]
		} else {
			name, names = names, nil
		}
		b = append(b, name...)
		b = append(b, ':')
		first := true
		for i := range req.Header {
			f := &req.Header[i]
			if !equalFoldBytes(f.Name, name) {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = appendTrimmed(b, f.Value)
		}
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = append(b, a.SignedHeaders...)
	b = append(b, '\n')
	b = append(b, payloadHash...)
	s.buf = b
	return b
}

// appendQuery appends the canonical query string: each parameter decoded
// and re-encoded the AWS way, sorted by name then value, without
// X-Amz-Signature when presigned.
func (s *scratch) appendQuery(b, raw []byte, presigned bool) []byte {
	if len(raw) == 0 {
		return b
	}
	pairs := s.pairs[:0]
	rest := string(raw)
	for rest != "" {
		var kv string
		kv, rest, _ = strings.Cut(rest, "&")
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		if presigned && k == qSignature {
			continue
		}
		// A badly escaped parameter is kept as sent: the signature
		// then fails to match, which is the right answer.
		if u, err := url.QueryUnescape(k); err == nil {
			k = u
		}
		if u, err := url.QueryUnescape(v); err == nil {
			v = u
		}
		pairs = append(pairs, [2]string{k, v})
	}
	for i := range pairs {
		pairs[i][0] = string(appendEscaped(nil, []byte(pairs[i][0]), false))
		pairs[i][1] = string(appendEscaped(nil, []byte(pairs[i][1]), false))
	}
	slices.SortFunc(pairs, func(x, y [2]string) int {
		if c := strings.Compare(x[0], y[0]); c != 0 {
			return c
		}
		return strings.Compare(x[1], y[1])
	})
	for i, p := range pairs {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p[0]...)
		b = append(b, '=')
		b = append(b, p[1]...)
	}
	clear(pairs)
	s.pairs = pairs[:0]
	return b
}

const upperHex = "0123456789ABCDEF"

// appendEscaped appends p URI-encoded as SigV4 wants: every byte but the
// unreserved characters (and '/' when keepSlash) as %XX.
func appendEscaped(b, p []byte, keepSlash bool) []byte {
	for _, c := range p {
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || c == '/' && keepSlash {
			b = append(b, c)
			continue
		}
		b = append(b, '%', upperHex[c>>4], upperHex[c&15])
	}
	return b
}

// appendTrimmed appends a header value with leading and trailing spaces
// removed and runs of spaces collapsed to one.
func appendTrimmed(b, v []byte) []byte {
	// By hand: bytes.Trim builds its byte set on every call.
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	space := false
	for _, c := range v {
		if c == ' ' || c == '\t' {
			space = true
			continue
		}
		if space {
			b = append(b, ' ')
			space = false
		}
		b = append(b, c)
	}
	return b
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		if lower(b[i]) != lower(s[i]) {
			return false
		}
	}
	return true
}

func equalFoldBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		if lower(a[i]) != lower(b[i]) {
			return false
		}
	}
	return true
}
