package app_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/berth-io/berth/internal/config"
)

// Browser tests: what a web page can and cannot do to a berth it reaches
// (a loopback berth in the visitor's browser, or through DNS rebinding).

// browserRequest sends one request with the given headers; "Host" sets
// the Host header. It returns the response with its body read.
func browserRequest(t *testing.T, method, url string, hdr map[string]string, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

// corsHeaders returns the response's Access-Control-* headers.
func corsHeaders(resp *http.Response) http.Header {
	out := http.Header{}
	for k, v := range resp.Header {
		if strings.HasPrefix(strings.ToLower(k), "access-control-") {
			out[k] = v
		}
	}
	return out
}

// s3ErrorCode returns the Code of an S3 XML error body.
func s3ErrorCode(t *testing.T, body string) (code, msg string) {
	t.Helper()
	var e struct{ Code, Message string }
	if err := xml.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not an S3 error document: %v\n%s", err, body)
	}
	return e.Code, e.Message
}

func TestBrowserCORSRefusedByDefault(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.upload(t, "site", "a.txt", []byte("hello"))

	t.Run("preflight", func(t *testing.T) {
		for _, path := range []string{"/site/a.txt", "/site", "/", "/endpoints/e/invocations"} {
			resp, body := browserRequest(t, http.MethodOptions, s.url+path, map[string]string{
				"Origin":                         "https://evil.example",
				"Access-Control-Request-Method":  "PUT",
				"Access-Control-Request-Headers": "content-type,x-amz-date",
			}, nil)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("preflight %s: %d, want 403", path, resp.StatusCode)
			}
			if h := corsHeaders(resp); len(h) > 0 {
				t.Errorf("preflight %s: CORS headers %v", path, h)
			}
			if path == "/endpoints/e/invocations" {
				if code := resp.Header.Get("X-Amzn-ErrorType"); code != "AccessDeniedException" {
					t.Errorf("preflight %s: error type %q", path, code)
				}
			} else if code, _ := s3ErrorCode(t, body); code != "AccessForbidden" {
				t.Errorf("preflight %s: S3 code %q", path, code)
			}
		}
	})
	t.Run("no CORS headers on any response", func(t *testing.T) {
		for _, hdr := range []map[string]string{nil, {"Origin": "https://evil.example"}} {
			for _, path := range []string{"/", "/site", "/site/a.txt", "/site/missing", "/ping"} {
				resp, _ := browserRequest(t, http.MethodGet, s.url+path, hdr, nil)
				if h := corsHeaders(resp); len(h) > 0 {
					t.Errorf("GET %s (%v): %d with CORS headers %v", path, hdr, resp.StatusCode, h)
				}
			}
		}
	})
	t.Run("objects are not pages of berth's origin", func(t *testing.T) {
		s.upload(t, "site", "page.html", []byte("<script>fetch('/', {method: 'POST'})</script>"))
		resp, _ := browserRequest(t, http.MethodGet, s.url+"/site/page.html", nil, nil)
		if csp := resp.Header.Get("Content-Security-Policy"); csp != "sandbox" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("object served with Content-Security-Policy %q, X-Content-Type-Options %q", csp, resp.Header.Get("X-Content-Type-Options"))
		}
	})
	t.Run("cross-origin writes refused", func(t *testing.T) {
		// Requests a page can send without a preflight.
		for _, tc := range []struct {
			method, path, ctype string
			hdr                 map[string]string
		}{
			{http.MethodPost, "/endpoints/e/invocations", "text/plain", map[string]string{"Origin": "https://evil.example"}},
			{http.MethodPost, "/site", "multipart/form-data; boundary=x", map[string]string{"Origin": "https://evil.example"}},
			{http.MethodPost, "/site", "multipart/form-data; boundary=x", map[string]string{"Sec-Fetch-Site": "cross-site"}},
			{http.MethodPut, "/site/b.txt", "text/plain", map[string]string{"Origin": "null"}},
		} {
			tc.hdr["Content-Type"] = tc.ctype
			resp, _ := browserRequest(t, tc.method, s.url+tc.path, tc.hdr, strings.NewReader("--x--\r\n"))
			if resp.StatusCode != http.StatusForbidden || len(corsHeaders(resp)) > 0 {
				t.Errorf("%s %s %v: %d %v, want 403 and no CORS headers", tc.method, tc.path, tc.hdr, resp.StatusCode, corsHeaders(resp))
			}
		}
		if _, err := s.s3.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String("site"), Key: aws.String("b.txt")}); err == nil {
			t.Error("a cross-origin PUT stored an object")
		}
	})
}

func TestBrowserCORSListedOrigin(t *testing.T) {
	const origin = "https://app.example.com"
	cfg := testConfig(t, t.TempDir())
	cfg.CORS.AllowedOrigins = []string{origin + "/"}
	s := startServer(t, cfg)
	s.upload(t, "site", "a.txt", []byte("hello"))

	resp, _ := browserRequest(t, http.MethodOptions, s.url+"/site/a.txt", map[string]string{
		"Origin":                         origin,
		"Access-Control-Request-Method":  "PUT",
		"Access-Control-Request-Headers": "authorization,content-type,x-amz-date,x-amz-content-sha256",
	}, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("preflight from the listed origin: %d", resp.StatusCode)
	}
	h := resp.Header
	if got := h.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != origin {
		t.Errorf("Access-Control-Allow-Origin = %q", got)
	}
	if !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
		t.Errorf("Vary = %q", h.Values("Vary"))
	}
	if m := h.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "PUT") || !strings.Contains(m, "GET") {
		t.Errorf("Access-Control-Allow-Methods = %q", m)
	}
	if ah := strings.ToLower(h.Get("Access-Control-Allow-Headers")); !strings.Contains(ah, "authorization") || !strings.Contains(ah, "x-amz-date") {
		t.Errorf("Access-Control-Allow-Headers = %q", ah)
	}

	// The actual request: the origin echoed, never "*", gofakes3's
	// grant gone.
	resp, body := browserRequest(t, http.MethodGet, s.url+"/site/a.txt", map[string]string{"Origin": origin}, nil)
	if resp.StatusCode != http.StatusOK || body != "hello" {
		t.Fatalf("GET from the listed origin: %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != origin {
		t.Errorf("Access-Control-Allow-Origin = %q", got)
	}
	if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
		t.Errorf("Vary = %q", resp.Header.Values("Vary"))
	}
	expose := strings.ToLower(resp.Header.Get("Access-Control-Expose-Headers"))
	for _, want := range []string{"x-amzn-requestid", "etag"} {
		if !strings.Contains(expose, want) {
			t.Errorf("Access-Control-Expose-Headers %q lacks %s", expose, want)
		}
	}
	if m := resp.Header.Get("Access-Control-Allow-Methods"); strings.Contains(m, "OPTIONS") {
		t.Errorf("gofakes3's CORS headers leak: Allow-Methods %q", m)
	}
	// A write from the listed origin is served.
	resp, _ = browserRequest(t, http.MethodPut, s.url+"/site/b.txt", map[string]string{"Origin": origin, "Content-Type": "text/plain"}, strings.NewReader("b"))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("PUT from the listed origin: %d, Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}

	// Any other origin gets nothing.
	for _, other := range []string{"https://evil.example", "http://app.example.com", "https://app.example.com:8443"} {
		resp, _ := browserRequest(t, http.MethodOptions, s.url+"/site/a.txt", map[string]string{
			"Origin": other, "Access-Control-Request-Method": "GET",
		}, nil)
		if resp.StatusCode != http.StatusForbidden || len(corsHeaders(resp)) > 0 {
			t.Errorf("preflight from %s: %d %v", other, resp.StatusCode, corsHeaders(resp))
		}
		resp, _ = browserRequest(t, http.MethodGet, s.url+"/site/a.txt", map[string]string{"Origin": other}, nil)
		if len(corsHeaders(resp)) > 0 {
			t.Errorf("GET from %s: CORS headers %v", other, corsHeaders(resp))
		}
	}
	// A method berth does not grant.
	resp, _ = browserRequest(t, http.MethodOptions, s.url+"/site/a.txt", map[string]string{
		"Origin": origin, "Access-Control-Request-Method": "PATCH",
	}, nil)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("preflight for PATCH: %d", resp.StatusCode)
	}
}

// Browser uploads (POST Object with a signed policy).

const (
	browserAccessKey = "AKIDBROWSERTEST"
	browserSecret    = "browser-test-secret"
)

// postForm is a browser upload form: fields in order, then the file.
type postForm struct {
	fields   [][2]string
	filename string
	file     []byte
}

func (f *postForm) set(name, value string) {
	for i := range f.fields {
		if f.fields[i][0] == name {
			f.fields[i][1] = value
			return
		}
	}
	f.fields = append(f.fields, [2]string{name, value})
}

// signedPostForm builds the form a web application hands a browser: a
// policy with the given expiration and conditions (plus the SigV4 ones),
// signed with secret as AWS documents ("Calculating a signature" for
// POST), and the fields that satisfy it.
func signedPostForm(accessKey, secret string, expires time.Time, conditions []any, fields map[string]string) *postForm {
	now := time.Now().UTC()
	date := now.Format("20060102")
	cred := accessKey + "/" + date + "/us-east-1/s3/aws4_request"
	amzDate := now.Format("20060102T150405Z")
	conds := append([]any{}, conditions...)
	conds = append(conds,
		map[string]string{"x-amz-algorithm": "AWS4-HMAC-SHA256"},
		map[string]string{"x-amz-credential": cred},
		map[string]string{"x-amz-date": amzDate},
	)
	doc, _ := json.Marshal(map[string]any{
		"expiration": expires.UTC().Format("2006-01-02T15:04:05.000Z"),
		"conditions": conds,
	})
	policy := base64.StdEncoding.EncodeToString(doc)
	mac := func(key []byte, data string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(data))
		return m.Sum(nil)
	}
	k := mac([]byte("AWS4"+secret), date)
	k = mac(k, "us-east-1")
	k = mac(k, "s3")
	k = mac(k, "aws4_request")
	f := &postForm{filename: "photo.txt", file: []byte("uploaded from a browser")}
	for _, name := range []string{"key", "Content-Type", "acl"} {
		if v, ok := fields[name]; ok {
			f.set(name, v)
		}
	}
	for name, v := range fields {
		f.set(name, v)
	}
	f.set("x-amz-algorithm", "AWS4-HMAC-SHA256")
	f.set("x-amz-credential", cred)
	f.set("x-amz-date", amzDate)
	f.set("policy", policy)
	f.set("x-amz-signature", hex.EncodeToString(mac(k, policy)))
	return f
}

// post sends the form as a browser does: multipart/form-data, the file
// last.
func (f *postForm) post(t *testing.T, url string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, kv := range f.fields {
		mw.WriteField(kv[0], kv[1])
	}
	if f.file != nil {
		fw, _ := mw.CreateFormFile("file", f.filename)
		fw.Write(f.file)
	}
	mw.Close()
	h := map[string]string{"Content-Type": mw.FormDataContentType()}
	for k, v := range hdr {
		h[k] = v
	}
	return browserRequest(t, http.MethodPost, url, h, &body)
}

// objectKeys lists a bucket.
func (s *server) objectKeys(t *testing.T, bucket string) []string {
	t.Helper()
	out, err := s.s3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

func (s *server) object(t *testing.T, bucket, key string) (string, error) {
	t.Helper()
	out, err := s.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	data, err := io.ReadAll(out.Body)
	return string(data), err
}

func uploadsConditions() []any {
	return []any{
		map[string]string{"bucket": "inbox"},
		[]any{"starts-with", "$key", "uploads/"},
		[]any{"starts-with", "$Content-Type", "text/"},
		[]any{"content-length-range", 1, 100},
	}
}

func TestBrowserPostPolicy(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Auth.Credentials = []config.Credential{{AccessKeyID: browserAccessKey, SecretAccessKey: browserSecret}}
	s := startServer(t, cfg)
	// Requests other than the browser uploads are signature-checked.
	_, _, s.s3 = authClients(s.url, credentials.NewStaticCredentialsProvider(browserAccessKey, browserSecret, ""), nil)
	ctx := context.Background()
	if _, err := s.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("inbox")}); err != nil {
		t.Fatal(err)
	}
	url := s.url + "/inbox"
	later := time.Now().Add(time.Hour)
	goodFields := map[string]string{"key": "uploads/${filename}", "Content-Type": "text/plain"}

	refused := []struct {
		name       string
		form       func() *postForm
		status     int
		code, want string
	}{
		{"no policy", func() *postForm {
			return &postForm{fields: [][2]string{{"key", "uploads/a.txt"}}, filename: "a.txt", file: []byte("x")}
		}, 403, "AccessDenied", "policy"},
		{"policy without signature", func() *postForm {
			f := signedPostForm(browserAccessKey, browserSecret, later, uploadsConditions(), goodFields)
			f.set("x-amz-signature", "")
			return f
		}, 403, "SignatureDoesNotMatch", ""},
		{"wrong secret", func() *postForm {
			return signedPostForm(browserAccessKey, "not-the-secret", later, uploadsConditions(), goodFields)
		}, 403, "SignatureDoesNotMatch", ""},
		{"unknown access key", func() *postForm {
			return signedPostForm("AKIDUNKNOWN", browserSecret, later, uploadsConditions(), goodFields)
		}, 403, "InvalidAccessKeyId", ""},
		{"tampered policy", func() *postForm {
			f := signedPostForm(browserAccessKey, browserSecret, later, uploadsConditions(), goodFields)
			other := signedPostForm(browserAccessKey, browserSecret, later, []any{map[string]string{"bucket": "inbox"}, []any{"starts-with", "$key", ""}, []any{"starts-with", "$Content-Type", ""}}, goodFields)
			for _, kv := range other.fields {
				if kv[0] == "policy" {
					f.set("policy", kv[1])
				}
			}
			return f
		}, 403, "SignatureDoesNotMatch", ""},
		{"expired policy", func() *postForm {
			return signedPostForm(browserAccessKey, browserSecret, time.Now().Add(-time.Minute), uploadsConditions(), goodFields)
		}, 403, "AccessDenied", "expired"},
		{"key outside the policy", func() *postForm {
			return signedPostForm(browserAccessKey, browserSecret, later, uploadsConditions(), map[string]string{"key": "elsewhere/a.txt", "Content-Type": "text/plain"})
		}, 403, "AccessDenied", "Condition failed"},
		{"other bucket's policy", func() *postForm {
			conds := uploadsConditions()
			conds[0] = map[string]string{"bucket": "public"}
			return signedPostForm(browserAccessKey, browserSecret, later, conds, goodFields)
		}, 403, "AccessDenied", "Condition failed"},
		{"content type outside the policy", func() *postForm {
			return signedPostForm(browserAccessKey, browserSecret, later, uploadsConditions(), map[string]string{"key": "uploads/a", "Content-Type": "text/html,application/x-evil"})
		}, 403, "AccessDenied", "Condition failed"},
		{"field the policy does not name", func() *postForm {
			f := signedPostForm(browserAccessKey, browserSecret, later, uploadsConditions(), goodFields)
			f.set("x-amz-meta-owner", "mallory")
			return f
		}, 403, "AccessDenied", "Extra input fields"},
		{"file too large", func() *postForm {
			f := signedPostForm(browserAccessKey, browserSecret, later, uploadsConditions(), goodFields)
			f.file = bytes.Repeat([]byte("x"), 101)
			return f
		}, 400, "EntityTooLarge", ""},
		{"file too small", func() *postForm {
			f := signedPostForm(browserAccessKey, browserSecret, later, uploadsConditions(), goodFields)
			f.file = []byte{}
			return f
		}, 400, "EntityTooSmall", ""},
		{"no file", func() *postForm {
			f := signedPostForm(browserAccessKey, browserSecret, later, uploadsConditions(), goodFields)
			f.file = nil
			return f
		}, 400, "InvalidArgument", "file"},
		{"empty key", func() *postForm {
			conds := uploadsConditions()
			conds[1] = []any{"starts-with", "$key", ""}
			return signedPostForm(browserAccessKey, browserSecret, later, conds, map[string]string{"key": "", "Content-Type": "text/plain"})
		}, 400, "InvalidArgument", "key"},
		{"not a policy document", func() *postForm {
			f := signedPostForm(browserAccessKey, browserSecret, later, []any{[]any{"like", "$key", "x"}}, goodFields)
			return f
		}, 400, "InvalidPolicyDocument", ""},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := tc.form().post(t, url, nil)
			code, msg := s3ErrorCode(t, body)
			if resp.StatusCode != tc.status || code != tc.code || !strings.Contains(msg, tc.want) {
				t.Errorf("%d %s %q, want %d %s with %q", resp.StatusCode, code, msg, tc.status, tc.code, tc.want)
			}
			if keys := s.objectKeys(t, "inbox"); len(keys) > 0 {
				t.Fatalf("a refused upload stored %v", keys)
			}
		})
	}

	t.Run("valid", func(t *testing.T) {
		f := signedPostForm(browserAccessKey, browserSecret, later, uploadsConditions(), goodFields)
		resp, body := f.post(t, url, nil)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("valid upload: %d %s", resp.StatusCode, body)
		}
		got, err := s.object(t, "inbox", "uploads/photo.txt")
		if err != nil || got != "uploaded from a browser" {
			t.Fatalf("stored object: %q %v", got, err)
		}
		head, err := s.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("inbox"), Key: aws.String("uploads/photo.txt")})
		if err != nil || aws.ToString(head.ContentType) != "text/plain" {
			t.Errorf("content type %q %v", aws.ToString(head.ContentType), err)
		}
	})
	t.Run("valid, virtual-hosted", func(t *testing.T) {
		f := signedPostForm(browserAccessKey, browserSecret, later, uploadsConditions(), map[string]string{"key": "uploads/vhost.txt", "Content-Type": "text/plain"})
		host := "inbox.localhost:" + s.url[strings.LastIndexByte(s.url, ':')+1:]
		resp, body := f.post(t, s.url+"/", map[string]string{"Host": host})
		if resp.StatusCode/100 != 2 {
			t.Fatalf("virtual-hosted upload: %d %s", resp.StatusCode, body)
		}
		if got, err := s.object(t, "inbox", "uploads/vhost.txt"); err != nil || got != "uploaded from a browser" {
			t.Fatalf("stored object: %q %v", got, err)
		}
	})
	t.Run("valid form from a page of another origin", func(t *testing.T) {
		f := signedPostForm(browserAccessKey, browserSecret, later, uploadsConditions(), map[string]string{"key": "uploads/cross.txt", "Content-Type": "text/plain"})
		resp, _ := f.post(t, url, map[string]string{"Origin": "https://evil.example"})
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-origin form: %d", resp.StatusCode)
		}
		if _, err := s.object(t, "inbox", "uploads/cross.txt"); err == nil {
			t.Error("a cross-origin form was stored")
		}
	})
	t.Run("boto3 generate_presigned_post", func(t *testing.T) {
		fields := boto3PresignedPost(t, s.url, "inbox", "uploads/boto3.txt")
		f := &postForm{filename: "boto3.txt", file: []byte("signed by boto3")}
		for _, kv := range fields {
			f.set(kv[0], kv[1])
		}
		resp, body := f.post(t, url, nil)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("boto3 form: %d %s", resp.StatusCode, body)
		}
		if got, err := s.object(t, "inbox", "uploads/boto3.txt"); err != nil || got != "signed by boto3" {
			t.Fatalf("stored object: %q %v", got, err)
		}
		// The same form with a key it was not signed for.
		f.set("key", "uploads/other.txt")
		resp, body = f.post(t, url, nil)
		if code, _ := s3ErrorCode(t, body); resp.StatusCode != 403 || code != "AccessDenied" {
			t.Errorf("boto3 form, other key: %d %s", resp.StatusCode, code)
		}
	})
}

// boto3PresignedPost returns the form fields boto3's
// generate_presigned_post gives for bucket and key (a 1-100 byte
// content-length-range), in order. Older botocore signs POST policies
// with Signature Version 2 unless told s3v4; berth takes Version 4 only.
func boto3PresignedPost(t *testing.T, url, bucket, key string) [][2]string {
	t.Helper()
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	const script = `
import json, sys, boto3, botocore.config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
    config=botocore.config.Config(signature_version="s3v4", s3={"addressing_style": "path"}))
post = s3.generate_presigned_post(sys.argv[2], sys.argv[3],
    Conditions=[["content-length-range", 1, 100]], ExpiresIn=600)
print(json.dumps(list(post["fields"].items())))
`
	cmd := exec.Command(python, "-c", script, url, bucket, key)
	cmd.Env = append(os.Environ(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_ACCESS_KEY_ID="+browserAccessKey, "AWS_SECRET_ACCESS_KEY="+browserSecret)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && strings.Contains(string(ee.Stderr), "No module named") {
		t.Skip("no boto3: ", string(ee.Stderr))
	}
	if err != nil {
		t.Fatalf("boto3: %v %s", err, out)
	}
	var fields [][2]string
	if err := json.Unmarshal(out, &fields); err != nil {
		t.Fatalf("boto3 output %q: %v", out, err)
	}
	return fields
}

func TestBrowserPostPolicyWithoutCredentials(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	if _, err := s.s3.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String("inbox")}); err != nil {
		t.Fatal(err)
	}
	// Signed with some key: "any key works" has no secret to check it by.
	f := signedPostForm(browserAccessKey, browserSecret, time.Now().Add(time.Hour), uploadsConditions(), map[string]string{"key": "uploads/a.txt", "Content-Type": "text/plain"})
	for _, form := range []*postForm{f, {fields: [][2]string{{"key", "a.txt"}}, filename: "a.txt", file: []byte("x")}} {
		resp, body := form.post(t, s.url+"/inbox", nil)
		code, msg := s3ErrorCode(t, body)
		if resp.StatusCode != 403 || code != "AccessDenied" || !strings.Contains(msg, "credentials") {
			t.Errorf("%d %s %q, want 403 AccessDenied saying to configure credentials", resp.StatusCode, code, msg)
		}
	}
	if keys := s.objectKeys(t, "inbox"); len(keys) > 0 {
		t.Fatalf("stored %v", keys)
	}
}

// DNS rebinding: a page on a name of its own, rebound to 127.0.0.1, sends
// its requests with its name in Host.

func TestBrowserHostGuard(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.AllowedHosts = []string{"berth.internal", "*.wild.example"}
	s := startServer(t, cfg)
	s.deploy(t, "hosted", nil, "", 1)
	s.upload(t, "site", "a.txt", []byte("hello"))
	port := s.url[strings.LastIndexByte(s.url, ':')+1:]

	invoke := func(host string, hdr map[string]string) (*http.Response, string) {
		h := map[string]string{"Host": host, "Content-Type": "text/plain"}
		for k, v := range hdr {
			h[k] = v
		}
		// Plain InvokeEndpoint: the fast path's request unless refused.
		return browserRequest(t, http.MethodPost, s.url+"/endpoints/hosted/invocations", h, strings.NewReader("ping"))
	}
	for _, host := range []string{"evil.example:" + port, "evil.example", "localhost.evil.example:" + port, "127.0.0.1.evil.example:" + port, "wild.example:" + port, "10.1.2.3:" + port} {
		resp, body := invoke(host, nil)
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-ErrorType") != "AccessDeniedException" {
			t.Errorf("InvokeEndpoint, Host %s: %d %s %s", host, resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), body)
			continue
		}
		var e struct{ Message string }
		json.Unmarshal([]byte(body), &e)
		if !strings.Contains(e.Message, host) || !strings.Contains(e.Message, "allowed_hosts") {
			t.Errorf("InvokeEndpoint, Host %s: message %q does not name the Host and allowed_hosts", host, e.Message)
		}
		// The other paths: S3 (an XML error) and the control plane.
		resp, body = browserRequest(t, http.MethodGet, s.url+"/site/a.txt", map[string]string{"Host": host}, nil)
		if code, _ := s3ErrorCode(t, body); resp.StatusCode != http.StatusForbidden || code != "AccessDenied" {
			t.Errorf("S3 GET, Host %s: %d %s", host, resp.StatusCode, code)
		}
		resp, _ = browserRequest(t, http.MethodPost, s.url+"/", map[string]string{
			"Host": host, "X-Amz-Target": "SageMaker.ListEndpoints", "Content-Type": "application/x-amz-json-1.1",
		}, strings.NewReader("{}"))
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("X-Amzn-ErrorType") != "AccessDeniedException" {
			t.Errorf("ListEndpoints, Host %s: %d %s", host, resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"))
		}
	}
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "127.9.8.7:" + port, "[::1]:" + port, "LOCALHOST", "site.localhost:" + port, "berth.internal:" + port, "a.wild.example:" + port} {
		if resp, body := invoke(host, nil); resp.StatusCode != http.StatusOK {
			t.Errorf("InvokeEndpoint, Host %s: %d %s", host, resp.StatusCode, body)
		}
	}
	// S3 virtual-hosted style under localhost keeps working.
	resp, body := browserRequest(t, http.MethodGet, s.url+"/a.txt", map[string]string{"Host": "site.localhost:" + port}, nil)
	if resp.StatusCode != http.StatusOK || body != "hello" {
		t.Errorf("virtual-hosted GET: %d %q", resp.StatusCode, body)
	}
	// A browser's InvokeEndpoint from another origin, with an allowed
	// Host: refused, and not by the fast path.
	if resp, _ := invoke("localhost:"+port, map[string]string{"Origin": "https://evil.example"}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin InvokeEndpoint: %d", resp.StatusCode)
	}
	// The SDK's own requests are untouched.
	if out, err := s.invoke(t, "hosted", "sdk"); err != nil {
		t.Errorf("SDK InvokeEndpoint: %q %v", out, err)
	}
}

// TestBrowserHostGuardOffLoopback: on another address with credentials
// the Host check is off unless allowed_hosts is set (a rebound page cannot
// sign). Without credentials (--insecure) it is on, any IP address
// allowed: DNS rebinding needs a name, and a page rebound to berth's
// address would otherwise own an API that runs code for anyone.
func TestBrowserHostGuardOffLoopback(t *testing.T) {
	for _, tc := range []struct {
		creds   bool
		allowed []string
		want    int
	}{
		{true, nil, http.StatusOK},
		{true, []string{"berth.internal"}, http.StatusForbidden},
		{false, nil, http.StatusForbidden},
		{false, []string{"berth.internal"}, http.StatusForbidden},
	} {
		cfg := testConfig(t, t.TempDir())
		cfg.Listen = "0.0.0.0:0"
		if tc.creds {
			cfg.Auth.Credentials = []config.Credential{{AccessKeyID: testKeyID, SecretAccessKey: testSecret}}
		} else {
			cfg.Auth.Insecure = true
		}
		cfg.AllowedHosts = tc.allowed
		s := startServer(t, cfg)
		port := s.url[strings.LastIndexByte(s.url, ':')+1:]
		// /ping: served unsigned, so only the Host check decides.
		url := "http://127.0.0.1:" + port + "/ping"
		if resp, _ := browserRequest(t, http.MethodGet, url, map[string]string{"Host": "evil.example:" + port}, nil); resp.StatusCode != tc.want {
			t.Errorf("credentials %v, allowed_hosts %v, Host evil.example: %d, want %d", tc.creds, tc.allowed, resp.StatusCode, tc.want)
		}
		allowed := append([]string{"127.0.0.1:" + port}, tc.allowed...)
		if !tc.creds && tc.allowed == nil {
			allowed = append(allowed, "10.1.2.3:"+port, "[2001:db8::1]:"+port)
		}
		for _, host := range allowed {
			if resp, _ := browserRequest(t, http.MethodGet, url, map[string]string{"Host": host}, nil); resp.StatusCode != http.StatusOK {
				t.Errorf("credentials %v, allowed_hosts %v, Host %s: %d", tc.creds, tc.allowed, host, resp.StatusCode)
			}
		}
	}
	// The InvokeEndpoint fast path applies the same rule.
	cfg := testConfig(t, t.TempDir())
	cfg.Listen = "0.0.0.0:0"
	cfg.Auth.Insecure = true
	s := startServer(t, cfg)
	port := s.url[strings.LastIndexByte(s.url, ':')+1:]
	resp, body := browserRequest(t, http.MethodPost, "http://127.0.0.1:"+port+"/endpoints/any/invocations",
		map[string]string{"Host": "rebound.evil.example:" + port, "Content-Type": "text/csv"}, strings.NewReader("1"))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "allowed_hosts") {
		t.Errorf("--insecure InvokeEndpoint, Host rebound.evil.example: %d %s", resp.StatusCode, body)
	}
}
