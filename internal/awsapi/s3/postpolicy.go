package s3

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Browser uploads (S3's POST Object): a multipart/form-data POST to a
// bucket whose form carries the object key, the file and a policy — a
// base64 JSON document with an expiration and conditions on the form's
// fields — signed with SigV4 (x-amz-algorithm, x-amz-credential,
// x-amz-date, x-amz-signature). gofakes3 stores any such form, signed or
// not; postGuard stands in front of it and lets through only a form whose
// policy is signed with a key berth knows, has not expired, and holds for
// every field, with a file whose size is within the policy's
// content-length-range. The file is read only after the policy checks
// out, so an unsigned form costs berth the size of its fields.

// SecretLookup returns the secret access key of an access key id, false
// for a key berth does not know.
type SecretLookup func(accessKeyID string) (secret string, ok bool)

// WithPostPolicy accepts browser uploads whose policy is signed with a
// secret lookup knows. Without it (or with a nil lookup, as when berth has
// no credentials configured) every browser upload is refused: there is no
// secret to check a policy against.
func WithPostPolicy(lookup SecretLookup) Option {
	return func(o *options) { o.postLookup = lookup }
}

// Limits of a browser upload form.
const (
	// maxPostFieldBytes bounds the fields before the file, policy
	// included (S3 allows 20 KB of policy).
	maxPostFieldBytes = 64 << 10
	// maxPostFileBytes is the largest file accepted (S3's limit for POST).
	maxPostFileBytes = 5 << 30
	// postMemoryBytes of a file are held in memory, the rest spooled.
	postMemoryBytes = 1 << 20
	// maxPolicyConditions bounds the conditions of one policy.
	maxPolicyConditions = 1000
)

type postGuard struct {
	next   http.Handler
	lookup SecretLookup
	now    func() time.Time
	dir    string // for spooled files; "" is the system's temporary dir
}

// postError is an S3 error a browser upload is refused with.
type postError struct {
	status  int
	code    string
	message string
}

func (e *postError) Error() string { return e.code + ": " + e.message }

func accessDenied(msg string) *postError {
	return &postError{http.StatusForbidden, "AccessDenied", msg}
}

func invalidArgument(msg string) *postError {
	return &postError{http.StatusBadRequest, "InvalidArgument", msg}
}

func policyFailed(msg string) *postError {
	return accessDenied("Invalid according to Policy: " + msg)
}

var (
	errPostNoCredentials = accessDenied("browser POST uploads need a policy signed with berth's credentials, and none are configured: set auth.credentials in the config or BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY")
	errPostMalformed     = &postError{http.StatusBadRequest, "MalformedPOSTRequest", "The body of your POST request is not well-formed multipart/form-data."}
	errPostNoPolicy      = accessDenied("browser POST uploads need a signed policy: the form has no \"policy\" field (see boto3's generate_presigned_post)")
)

// IsBrowserUpload reports whether r is an unsigned request the S3 handler
// serves as a browser upload (authenticated by its signed policy, not by
// an Authorization header or a presigned query). hostDomains are the
// virtual-host domains given to WithVirtualHostDomains.
func IsBrowserUpload(r *http.Request, hostDomains ...string) bool {
	if r.Header.Get("Authorization") != "" || r.URL.Query().Has("X-Amz-Credential") {
		return false
	}
	_, ok := uploadBucket(r, hostDomains)
	return ok
}

// uploadBucket returns the bucket of a request gofakes3 would serve as a
// browser upload: a POST to a bucket ("/<bucket>" or "/<bucket>/", or
// "/" on a virtual host) that is not a multi-object delete nor a
// multipart upload call.
func uploadBucket(r *http.Request, hostDomains []string) (string, bool) {
	if r.Method != http.MethodPost {
		return "", false
	}
	q := r.URL.Query()
	if q.Has("delete") || q.Has("uploads") || q.Get("uploadId") != "" {
		return "", false
	}
	// As gofakes3 splits "/<bucket>/<object>" (after virtualHost).
	var bucket, rest string
	if vb := hostBucket(r.Host, hostDomains); vb != "" {
		bucket, rest = vb, strings.TrimPrefix(r.URL.Path, "/")
	} else {
		bucket, rest, _ = strings.Cut(strings.TrimLeft(r.URL.Path, "/"), "/")
	}
	if bucket == "" || rest != "" {
		return "", false
	}
	return bucket, true
}

// hostBucket returns the bucket of a virtual-hosted–style Host
// ("<bucket>.<domain>[:port]"), "" if host is not one.
func hostBucket(host string, domains []string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	for _, d := range domains {
		if bucket, ok := strings.CutSuffix(host, "."+strings.ToLower(d)); ok && bucket != "" {
			return bucket
		}
	}
	return ""
}

func (p *postGuard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	bucket, ok := uploadBucket(r, nil) // behind virtualHost: path style
	if !ok {
		p.next.ServeHTTP(w, r)
		return
	}
	if err := p.serve(w, r, bucket); err != nil {
		var pe *postError
		if !errors.As(err, &pe) {
			pe = &postError{http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again."}
		}
		writeS3Error(w, r, pe)
	}
}

// serve checks a browser upload and hands a checked one to gofakes3.
func (p *postGuard) serve(w http.ResponseWriter, r *http.Request, bucket string) error {
	if p.lookup == nil {
		return errPostNoCredentials
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return errPostMalformed
	}
	form, file, err := readPostFields(mr, maxPostFieldBytes)
	if err != nil {
		return err
	}
	pol, err := checkPostForm(form, bucket, p.now(), p.lookup)
	if err != nil {
		return err
	}
	if file == nil {
		return invalidArgument("POST requires exactly one file upload per request.")
	}
	key := strings.ReplaceAll(form.value("key"), "${filename}", file.FileName())
	if key == "" {
		return invalidArgument("User key must have a length greater than 0.")
	}

	body, size, cleanup, err := spoolFile(file, min(pol.maxLen, maxPostFileBytes), p.dir)
	if err != nil {
		return err
	}
	defer cleanup()
	if size < pol.minLen {
		return &postError{http.StatusBadRequest, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size"}
	}

	// gofakes3 gets the checked form: the fields before the file (the
	// key with ${filename} filled in) and the file.
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	for _, f := range form.fields {
		v := f.value
		name := f.name
		if f.lower == "key" {
			name, v = "key", key
		}
		if err := mw.WriteField(name, v); err != nil {
			return err
		}
	}
	if _, err := mw.CreateFormFile("file", file.FileName()); err != nil {
		return err
	}
	tail := "\r\n--" + mw.Boundary() + "--\r\n"
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(io.MultiReader(&head, body, strings.NewReader(tail)))
	r2.ContentLength = int64(head.Len()) + size + int64(len(tail))
	r2.Header.Set("Content-Type", mw.FormDataContentType())
	r2.Header.Set("Content-Length", strconv.FormatInt(r2.ContentLength, 10))
	r2.MultipartForm, r2.Form, r2.PostForm = nil, nil, nil
	p.next.ServeHTTP(w, r2)
	if r2.MultipartForm != nil {
		r2.MultipartForm.RemoveAll()
	}
	return nil
}

// postForm holds the fields of a browser upload before its file.
type postForm struct {
	fields []postField
}

type postField struct {
	name, lower, value string
}

func (f *postForm) value(lower string) string {
	for _, fl := range f.fields {
		if fl.lower == lower {
			return fl.value
		}
	}
	return ""
}

func (f *postForm) has(lower string) bool {
	for _, fl := range f.fields {
		if fl.lower == lower {
			return true
		}
	}
	return false
}

// readPostFields reads the fields of a form up to its file part, which it
// returns unread (nil if the form has none). Fields after the file are
// never read: S3 ignores them. Field names are case-insensitive; a name
// given twice is an error.
func readPostFields(mr *multipart.Reader, limit int) (*postForm, *multipart.Part, error) {
	form := &postForm{}
	left := limit
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return form, nil, nil
		}
		if err != nil {
			return nil, nil, errPostMalformed
		}
		name := part.FormName()
		if name == "" {
			return nil, nil, errPostMalformed
		}
		lower := strings.ToLower(name)
		if lower == "file" {
			return form, part, nil
		}
		data, err := io.ReadAll(io.LimitReader(part, int64(left)+1))
		if err != nil {
			return nil, nil, errPostMalformed
		}
		left -= len(data) + len(name)
		if left < 0 {
			return nil, nil, &postError{http.StatusBadRequest, "MaxPostPreDataLengthExceeded", "Your POST request fields preceding the upload file were too large."}
		}
		if form.has(lower) {
			return nil, nil, invalidArgument(fmt.Sprintf("the form field %q is given more than once", name))
		}
		form.fields = append(form.fields, postField{name: name, lower: lower, value: string(data)})
	}
}

// checkPostForm checks a browser upload's form against its policy: the
// SigV4 signature of the policy with the secret of x-amz-credential's
// access key, the expiration at now, and every condition; and that every
// field but the exempt ones is named by a condition, as S3 requires. The
// file's size is left to the caller (the policy's minLen and maxLen).
func checkPostForm(form *postForm, bucket string, now time.Time, lookup SecretLookup) (*postPolicy, error) {
	policyB64 := form.value("policy")
	if policyB64 == "" {
		return nil, errPostNoPolicy
	}
	if alg := form.value("x-amz-algorithm"); alg != "AWS4-HMAC-SHA256" {
		if form.has("awsaccesskeyid") {
			return nil, invalidArgument("berth accepts POST policies signed with Signature Version 4 only (x-amz-algorithm AWS4-HMAC-SHA256), not Version 2")
		}
		return nil, invalidArgument(fmt.Sprintf("x-amz-algorithm must be AWS4-HMAC-SHA256, not %q", alg))
	}
	cred := strings.Split(form.value("x-amz-credential"), "/")
	if len(cred) != 5 || cred[0] == "" || cred[2] == "" || cred[3] != "s3" || cred[4] != "aws4_request" {
		return nil, invalidArgument("x-amz-credential must be <access key id>/<yyyymmdd>/<region>/s3/aws4_request")
	}
	date := form.value("x-amz-date")
	if _, err := time.Parse("20060102T150405Z", date); err != nil || date[:8] != cred[1] {
		return nil, invalidArgument("x-amz-date must be a yyyymmddThhmmssZ time on the day of x-amz-credential")
	}
	secret, ok := lookup(cred[0])
	if !ok {
		return nil, &postError{http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records."}
	}
	sig, err := hex.DecodeString(form.value("x-amz-signature"))
	if err != nil || len(sig) != sha256.Size {
		return nil, &postError{http.StatusForbidden, "SignatureDoesNotMatch", "x-amz-signature must be 64 hexadecimal digits"}
	}
	key := signingKey(secret, cred[1], cred[2], cred[3])
	if !hmac.Equal(sig, hmacSHA256(key, policyB64)) {
		return nil, &postError{http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method."}
	}
	doc, err := base64.StdEncoding.DecodeString(policyB64)
	if err != nil {
		return nil, &postError{http.StatusBadRequest, "InvalidPolicyDocument", "Invalid Policy: the policy is not base64"}
	}
	pol, err := parsePostPolicy(doc)
	if err != nil {
		return nil, &postError{http.StatusBadRequest, "InvalidPolicyDocument", "Invalid Policy: " + err.Error()}
	}
	if !now.Before(pol.expiration) {
		return nil, policyFailed("Policy expired.")
	}
	if err := pol.check(form, bucket); err != nil {
		return nil, err
	}
	if !form.has("key") {
		return nil, invalidArgument("Bucket POST must contain a field named 'key'.  If it is specified, please check the order of the fields.")
	}
	return pol, nil
}

// postPolicy is a parsed POST policy document.
type postPolicy struct {
	expiration     time.Time
	conditions     []postCondition
	minLen, maxLen int64 // content-length-range, all of them together
}

// postCondition is "eq" or "starts-with" on a field (lower case, no "$").
type postCondition struct {
	op, field, value string
	text             string // as written, for messages
}

// parsePostPolicy parses a policy document: {"expiration": RFC 3339 time,
// "conditions": [...]}, each condition {"field": "value"} (eq), ["eq" |
// "starts-with", "$field", "value"] or ["content-length-range", min, max].
func parsePostPolicy(doc []byte) (*postPolicy, error) {
	var raw struct {
		Expiration *string           `json:"expiration"`
		Conditions []json.RawMessage `json:"conditions"`
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("not a policy document: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not a policy document: data after the object")
	}
	if raw.Expiration == nil {
		return nil, errors.New("policy missing expiration")
	}
	exp, err := time.Parse(time.RFC3339, *raw.Expiration)
	if err != nil {
		return nil, fmt.Errorf("invalid expiration %q", *raw.Expiration)
	}
	if raw.Conditions == nil {
		return nil, errors.New("policy missing conditions")
	}
	if len(raw.Conditions) > maxPolicyConditions {
		return nil, fmt.Errorf("more than %d conditions", maxPolicyConditions)
	}
	p := &postPolicy{expiration: exp, maxLen: maxPostFileBytes}
	for _, c := range raw.Conditions {
		if err := p.addCondition(c); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *postPolicy) addCondition(c json.RawMessage) error {
	dec := json.NewDecoder(bytes.NewReader(c))
	dec.UseNumber()
	c = bytes.TrimSpace(c)
	if len(c) > 0 && c[0] == '{' {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return fmt.Errorf("invalid condition %s", c)
		}
		for k, v := range m {
			s, ok := v.(string)
			if !ok || k == "" {
				return fmt.Errorf("invalid condition %s", c)
			}
			p.conditions = append(p.conditions, postCondition{op: "eq", field: strings.ToLower(strings.TrimPrefix(k, "$")), value: s, text: string(c)})
		}
		return nil
	}
	var a []any
	if err := dec.Decode(&a); err != nil || len(a) != 3 {
		return fmt.Errorf("invalid condition %s", c)
	}
	op, _ := a[0].(string)
	switch op = strings.ToLower(op); op {
	case "content-length-range":
		lo, okLo := policyInt(a[1])
		hi, okHi := policyInt(a[2])
		if !okLo || !okHi || lo > hi {
			return fmt.Errorf("invalid content-length-range condition %s", c)
		}
		p.minLen, p.maxLen = max(p.minLen, lo), min(p.maxLen, hi)
		return nil
	case "eq", "starts-with":
		field, okF := a[1].(string)
		value, okV := a[2].(string)
		if !okF || !okV || len(field) < 2 || field[0] != '$' {
			return fmt.Errorf("invalid condition %s", c)
		}
		p.conditions = append(p.conditions, postCondition{op: op, field: strings.ToLower(field[1:]), value: value, text: string(c)})
		return nil
	}
	return fmt.Errorf("invalid condition operator in %s", c)
}

// policyInt reads a non-negative integer given as a JSON number or string.
func policyInt(v any) (int64, bool) {
	var s string
	switch v := v.(type) {
	case json.Number:
		s = v.String()
	case string:
		s = v
	default:
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0
}

// check applies the conditions to the form (bucket is the bucket the form
// was posted to), and refuses a field no condition names.
func (p *postPolicy) check(form *postForm, bucket string) error {
	named := map[string]bool{}
	for _, c := range p.conditions {
		named[c.field] = true
		v := form.value(c.field)
		if c.field == "bucket" {
			v = bucket
		}
		ok := false
		switch c.op {
		case "eq":
			ok = v == c.value
		case "starts-with":
			ok = strings.HasPrefix(v, c.value)
			if c.field == "content-type" {
				// Every type of a list must match.
				for t := range strings.SplitSeq(v, ",") {
					ok = ok && strings.HasPrefix(strings.TrimSpace(t), c.value)
				}
			}
		}
		if !ok {
			return policyFailed("Policy Condition failed: " + c.text)
		}
	}
	for _, f := range form.fields {
		switch {
		case f.lower == "policy", f.lower == "x-amz-signature", strings.HasPrefix(f.lower, "x-ignore-"):
		case !named[f.lower]:
			return policyFailed("Extra input fields: " + f.name)
		}
	}
	return nil
}

// signingKey derives the SigV4 signing key.
func signingKey(secret, date, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), date)
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, "aws4_request")
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// spoolFile reads a file part of at most limit bytes: into memory when
// small, else into a temporary file under dir. cleanup removes the file.
func spoolFile(part io.Reader, limit int64, dir string) (body io.Reader, size int64, cleanup func(), err error) {
	tooLarge := &postError{http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size"}
	mem, err := io.ReadAll(io.LimitReader(part, min(limit, postMemoryBytes)+1))
	if err != nil {
		return nil, 0, nil, errPostMalformed
	}
	if int64(len(mem)) <= limit && len(mem) <= postMemoryBytes {
		return bytes.NewReader(mem), int64(len(mem)), func() {}, nil
	}
	if int64(len(mem)) > limit {
		return nil, 0, nil, tooLarge
	}
	f, err := os.CreateTemp(dir, "post-*")
	if err != nil {
		return nil, 0, nil, fmt.Errorf("spool browser upload: %w", err)
	}
	cleanup = func() {
		f.Close()
		os.Remove(f.Name())
	}
	n, err := io.Copy(f, io.MultiReader(bytes.NewReader(mem), io.LimitReader(part, limit-int64(len(mem))+1)))
	if err != nil {
		cleanup()
		var pe *os.PathError
		if errors.As(err, &pe) {
			return nil, 0, nil, fmt.Errorf("spool browser upload: %w", err)
		}
		return nil, 0, nil, errPostMalformed
	}
	if n > limit {
		cleanup()
		return nil, 0, nil, tooLarge
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, 0, nil, fmt.Errorf("spool browser upload: %w", err)
	}
	return f, n, cleanup, nil
}

// writeS3Error writes an S3 XML error. The request id is the one the
// awsapi handler gave the response.
func writeS3Error(w http.ResponseWriter, r *http.Request, e *postError) {
	id := w.Header().Get("x-amzn-RequestId")
	body, _ := xml.Marshal(struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string
		Message   string
		RequestID string `xml:"RequestId"`
	}{Code: e.code, Message: e.message, RequestID: id})
	body = append([]byte(xml.Header), body...)
	h := w.Header()
	if id != "" {
		h.Set("x-amz-request-id", id)
	}
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	// The rest of an unread body is not worth reading.
	h.Set("Connection", "close")
	w.WriteHeader(e.status)
	w.Write(body)
}
