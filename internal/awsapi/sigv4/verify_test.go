package sigv4_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/berth-io/berth/internal/awsapi/sigv4"
	"github.com/berth-io/berth/internal/h1"
)

var (
	goodCreds = aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "s3cr3t"}
	testNow   = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
)

func newVerifier(t testing.TB, now time.Time) *sigv4.Verifier {
	t.Helper()
	v, err := sigv4.New([]sigv4.Credential{{AccessKeyID: "AKIDTEST", SecretAccessKey: "s3cr3t"}, {AccessKeyID: "AKIDOTHER", SecretAccessKey: "other"}},
		sigv4.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// verifyServer serves requests by verifying them as received on the wire
// and answering the failure code (0 for none) in X-Code.
func verifyServer(t *testing.T, v *sigv4.Verifier) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req := sigv4.FromHTTP(r)
		a, err := sigv4.Parse(req)
		if err == nil {
			payload := []byte(hashHex(body))
			if p := req.HeaderValue("X-Amz-Content-Sha256"); p != nil {
				payload = p
			} else if a.Presigned {
				payload = []byte(sigv4.UnsignedPayload)
			}
			_, err = v.Verify(req, &a, payload)
		}
		var se *sigv4.Error
		if errors.As(err, &se) {
			w.Header().Set("X-Code", se.Code.String())
		} else if err != nil {
			t.Errorf("non-sigv4 error %v", err)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func send(t *testing.T, req *http.Request) string {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("X-Code")
}

// Each case signs with a new SDK signer: the SDK caches signing keys by
// access key id, which would hide a wrong secret.
func TestVerifyHeaderSigned(t *testing.T) {
	v := newVerifier(t, testNow)
	srv := verifyServer(t, v)
	ctx := context.Background()
	tests := []struct {
		name     string
		service  string
		path     string
		body     string
		creds    aws.Credentials
		at       time.Time
		sendHash bool // send x-amz-content-sha256 (S3 style)
		tamper   func(*http.Request)
		want     string // failure code, "" for success
	}{
		{name: "runtime", service: "sagemaker", path: "/endpoints/e1/invocations", body: "1,2,3", creds: goodCreds, at: testNow},
		{name: "escaped path, double-encoded for sagemaker", service: "sagemaker", path: "/endpoints/a%20b/invocations", body: "x", creds: goodCreds, at: testNow},
		{name: "query sorted and re-encoded", service: "sagemaker", path: "/x?b=2&a=%2Fq&a=1&c", body: "", creds: goodCreds, at: testNow},
		{name: "s3 path as sent", service: "s3", path: "/bucket/a%20key/%E2%82%AC", body: "data", creds: goodCreds, at: testNow, sendHash: true},
		{name: "second key", service: "s3", path: "/bucket", creds: aws.Credentials{AccessKeyID: "AKIDOTHER", SecretAccessKey: "other"}, at: testNow, sendHash: true},
		{name: "skew inside 15 minutes", service: "sagemaker", path: "/", creds: goodCreds, at: testNow.Add(-14 * time.Minute)},
		{name: "stale", service: "sagemaker", path: "/", creds: goodCreds, at: testNow.Add(-16 * time.Minute), want: "skewed"},
		{name: "future", service: "sagemaker", path: "/", creds: goodCreds, at: testNow.Add(16 * time.Minute), want: "skewed"},
		{name: "wrong secret", service: "sagemaker", path: "/", creds: aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "nope"}, at: testNow, want: "mismatch"},
		{name: "unknown key", service: "sagemaker", path: "/", creds: aws.Credentials{AccessKeyID: "AKIDNOPE", SecretAccessKey: "s3cr3t"}, at: testNow, want: "unknown key"},
		{name: "tampered body", service: "sagemaker", path: "/", body: "abc", creds: goodCreds, at: testNow,
			tamper: func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader("abd")) }, want: "mismatch"},
		{name: "tampered path", service: "sagemaker", path: "/endpoints/a/invocations", creds: goodCreds, at: testNow,
			tamper: func(r *http.Request) { r.URL.Path = "/endpoints/b/invocations" }, want: "mismatch"},
		{name: "tampered signed header", service: "sagemaker", path: "/", creds: goodCreds, at: testNow,
			tamper: func(r *http.Request) { r.Header.Set("X-Amz-Target", "SageMaker.DeleteModel") }, want: "mismatch"},
		{name: "no signature", service: "sagemaker", path: "/", creds: goodCreds, at: testNow,
			tamper: func(r *http.Request) { r.Header.Del("Authorization") }, want: "missing"},
		{name: "garbage authorization", service: "sagemaker", path: "/", creds: goodCreds, at: testNow,
			tamper: func(r *http.Request) { r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=x") }, want: "malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("X-Amz-Target", "SageMaker.ListModels")
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			h := hashHex([]byte(tc.body))
			if tc.sendHash {
				req.Header.Set("X-Amz-Content-Sha256", h)
			}
			opts := func(o *v4.SignerOptions) { o.DisableURIPathEscaping = tc.service == "s3" }
			if err := v4.NewSigner().SignHTTP(ctx, tc.creds, req, h, tc.service, "us-east-1", tc.at, opts); err != nil {
				t.Fatal(err)
			}
			if tc.tamper != nil {
				tc.tamper(req)
			}
			if got := send(t, req); got != tc.want {
				t.Errorf("code = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestVerifyPresigned(t *testing.T) {
	v := newVerifier(t, testNow)
	srv := verifyServer(t, v)
	presign := func(at time.Time, expires time.Duration, creds aws.Credentials) string {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/bucket/some%20key?versionId=3", nil)
		q := req.URL.Query()
		q.Set("X-Amz-Expires", fmt.Sprint(int(expires.Seconds())))
		req.URL.RawQuery = q.Encode()
		u, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, sigv4.UnsignedPayload, "s3", "eu-west-1", at,
			func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	get := func(u string) string {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		return send(t, req)
	}
	if got := get(presign(testNow.Add(-time.Minute), time.Hour, goodCreds)); got != "" {
		t.Errorf("valid presigned URL: code %q", got)
	}
	if got := get(presign(testNow.Add(-2*time.Hour), time.Hour, goodCreds)); got != "expired" {
		t.Errorf("expired presigned URL: code %q, want expired", got)
	}
	if got := get(presign(testNow.Add(20*time.Minute), time.Hour, goodCreds)); got != "skewed" {
		t.Errorf("future presigned URL: code %q, want skewed", got)
	}
	if got := get(presign(testNow, time.Hour, aws.Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "bad"})); got != "mismatch" {
		t.Errorf("presigned with a wrong secret: code %q, want mismatch", got)
	}
	u := presign(testNow, time.Hour, goodCreds)
	if got := get(strings.Replace(u, "some%20key", "other", 1)); got != "mismatch" {
		t.Errorf("presigned URL for another key: code %q, want mismatch", got)
	}
	if got := get(strings.Replace(u, "versionId=3", "versionId=4", 1)); got != "mismatch" {
		t.Errorf("presigned URL with another query: code %q, want mismatch", got)
	}
}

// chunkedBody signs payload as S3 aws-chunked with the SDK's stream signer.
func chunkedBody(t testing.TB, seed string, at time.Time, chunks ...[]byte) []byte {
	t.Helper()
	seedSig, _ := hex.DecodeString(seed)
	ss := v4.NewStreamSigner(goodCreds, "s3", "us-east-1", seedSig)
	var b bytes.Buffer
	for _, c := range append(chunks, nil) {
		sig, err := ss.GetSignature(context.Background(), nil, c, at)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%x;chunk-signature=%x\r\n%s\r\n", len(c), sig, c)
	}
	return b.Bytes()
}

func TestChunkedReader(t *testing.T) {
	v := newVerifier(t, testNow)
	sign := func() (*sigv4.Request, sigv4.Auth, string) {
		req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1/b/k", nil)
		req.Header.Set("X-Amz-Content-Sha256", sigv4.StreamingPayload)
		req.Header.Set("X-Amz-Decoded-Content-Length", "11")
		if err := v4.NewSigner().SignHTTP(context.Background(), goodCreds, req, sigv4.StreamingPayload, "s3", "us-east-1", testNow,
			func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }); err != nil {
			t.Fatal(err)
		}
		req.Host = "127.0.0.1"
		sr := sigv4.FromHTTP(req)
		a, err := sigv4.Parse(sr)
		if err != nil {
			t.Fatal(err)
		}
		auth := req.Header.Get("Authorization")
		return sr, a, auth[strings.LastIndex(auth, "=")+1:]
	}
	sr, a, seed := sign()
	sg, err := v.Verify(sr, &a, []byte(sigv4.StreamingPayload))
	if err != nil {
		t.Fatal(err)
	}
	good := chunkedBody(t, seed, testNow, []byte("hello "), []byte("world"))
	got, err := io.ReadAll(sigv4.NewChunkedReader(bytes.NewReader(good), sg, 11))
	if err != nil || string(got) != "hello world" {
		t.Fatalf("good chunks: %q, %v", got, err)
	}
	tampered := bytes.Replace(good, []byte("world"), []byte("w0rld"), 1)
	r := sigv4.NewChunkedReader(bytes.NewReader(tampered), sg, 11)
	// A reader that stops at the decoded length (as the S3 handler's
	// does) must still see the failure before the tampered bytes.
	got, err = io.ReadAll(io.LimitReader(r, 11))
	if err == nil || r.Failed() == nil || bytes.Contains(got, []byte("w0rld")) {
		t.Fatalf("tampered chunk: read %q, err %v, Failed %v", got, err, r.Failed())
	}
	// A bad signature on the final empty chunk fails before the last
	// data bytes are returned.
	i := bytes.LastIndex(good, []byte("chunk-signature="))
	badEnd := append([]byte(nil), good...)
	badEnd[i+len("chunk-signature=")] ^= 1
	r = sigv4.NewChunkedReader(bytes.NewReader(badEnd), sg, 11)
	got, err = io.ReadAll(io.LimitReader(r, 11))
	if err == nil || bytes.Contains(got, []byte("world")) {
		t.Fatalf("bad final chunk: read %q, err %v", got, err)
	}
	// Declared length and chunks disagree.
	if _, err := io.ReadAll(sigv4.NewChunkedReader(bytes.NewReader(good), sg, 12)); err == nil {
		t.Error("short body: no error")
	}
	if _, err := io.ReadAll(sigv4.NewChunkedReader(bytes.NewReader(good), sg, 10)); err == nil {
		t.Error("long body: no error")
	}
}

func TestHashReader(t *testing.T) {
	body := []byte("the body")
	sum := hashHex(body)
	got, err := io.ReadAll(io.LimitReader(sigv4.NewHashReader(bytes.NewReader(body), []byte(sum), int64(len(body))), int64(len(body))))
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("matching body: %q, %v", got, err)
	}
	r := sigv4.NewHashReader(strings.NewReader("the b0dy"), []byte(sum), int64(len(body)))
	got, err = io.ReadAll(io.LimitReader(r, int64(len(body))))
	if err == nil || r.Failed() == nil || len(got) == len(body) {
		t.Fatalf("tampered body: read %q, err %v", got, err)
	}
	r = sigv4.NewHashReader(strings.NewReader("the b0dy"), []byte(sum), -1)
	if _, err = io.ReadAll(r); err == nil {
		t.Fatal("tampered body of unknown length: no error")
	}
}

func TestVerifyAllocations(t *testing.T) {
	v := newVerifier(t, testNow)
	req, body := fastRequest(t)
	if _, err := verifyBuffered(v, req, body); err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(100, func() {
		if _, err := verifyBuffered(v, req, body); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("verifying a header-signed request allocates %.0f times, want 0", n)
	}
}

// TestVerifyPresignedV2 checks the version 2 query signature against the
// example in the S3 documentation ("Query string request authentication
// alternative", bucket johnsmith) and variations of it.
func TestVerifyPresignedV2(t *testing.T) {
	expires := time.Unix(1175139620, 0)
	v, err := sigv4.New([]sigv4.Credential{{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}},
		sigv4.Options{Now: func() time.Time { return expires.Add(-time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	const query = "AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D"
	req := func(method, path, q string) *sigv4.Request {
		return &sigv4.Request{Method: []byte(method), Path: []byte(path), Query: []byte(q),
			Header: []h1.Field{{Name: []byte("Host"), Value: []byte("s3.amazonaws.com")}}}
	}
	code := func(err error) string {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return se.Code.String()
		}
		return ""
	}
	if _, err := sigv4.Parse(req("GET", "/johnsmith/photos/puppy.jpg", query)); !sigv4.IsPresignedV2Error(err) {
		t.Fatalf("Parse of a v2 URL: %v", err)
	}
	for _, tc := range []struct{ name, method, path, query, want string }{
		{"documented example", "GET", "/johnsmith/photos/puppy.jpg", query, ""},
		{"other key", "GET", "/johnsmith/photos/kitten.jpg", query, "mismatch"},
		{"other method", "PUT", "/johnsmith/photos/puppy.jpg", query, "mismatch"},
		{"sub-resource added", "GET", "/johnsmith/photos/puppy.jpg", query + "&acl", "mismatch"},
		{"unknown key", "GET", "/johnsmith/photos/puppy.jpg", strings.Replace(query, "AKIAIOSFODNN7EXAMPLE", "AKIDNOPE", 1), "unknown key"},
	} {
		if got := code(v.VerifyPresignedV2(req(tc.method, tc.path, tc.query))); got != tc.want {
			t.Errorf("%s: code %q, want %q", tc.name, got, tc.want)
		}
	}
	late, _ := sigv4.New([]sigv4.Credential{{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}},
		sigv4.Options{Now: func() time.Time { return expires.Add(time.Second) }})
	if got := code(late.VerifyPresignedV2(req("GET", "/johnsmith/photos/puppy.jpg", query))); got != "expired" {
		t.Errorf("after Expires: code %q, want expired", got)
	}
}
