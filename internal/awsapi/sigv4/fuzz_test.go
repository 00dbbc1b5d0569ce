package sigv4_test

import (
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/berth-io/berth/internal/awsapi/sigv4"
)

// The parsers read client input before anything is authenticated: they
// must never panic, and what they accept must be well formed.

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDTEST/20260304/us-east-1/sagemaker/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=" + strings.Repeat("ab", 32))
	f.Add("AWS4-HMAC-SHA256 Credential=A/20260304/r/s/aws4_request,SignedHeaders=host,Signature=" + strings.Repeat("0", 64))
	f.Add("AWS4-HMAC-SHA256 Credential=A/2026/r/s/aws4_request")
	f.Add("AWS4-HMAC-SHA256 Credential=,SignedHeaders=;,Signature=zz")
	f.Add("Bearer token")
	f.Add("AWS4-HMAC-SHA256 ")
	f.Fuzz(func(t *testing.T, v string) {
		a, err := sigv4.ParseAuthorization([]byte(v))
		if err != nil {
			return
		}
		if len(a.AccessKey) == 0 || len(a.Date) != 8 || len(a.Region) == 0 || len(a.Service) == 0 || len(a.SignedHeaders) == 0 {
			t.Fatalf("accepted %q with empty parts: %+v", v, a)
		}
		if !bytes.HasSuffix(a.Scope, []byte("/aws4_request")) || bytes.Contains(a.SignedHeaders, []byte(";;")) {
			t.Fatalf("accepted %q with a bad scope or header list", v)
		}
	})
}

func FuzzParsePresigned(f *testing.F) {
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDTEST%2F20260304%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260304T050607Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=" + strings.Repeat("cd", 32))
	f.Add("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%zz&X-Amz-Date=1&X-Amz-Expires=-1&X-Amz-SignedHeaders=&X-Amz-Signature=")
	f.Add("X-Amz-Signature=1&X-Amz-Signature=2")
	f.Add("a=b&&c")
	f.Fuzz(func(t *testing.T, q string) {
		a, err := sigv4.ParsePresigned(q)
		if err != nil {
			return
		}
		if _, ok := sigv4.ParseAmzDate(a.AmzDate); !ok || a.Expires <= 0 || a.Expires > sigv4.MaxPresignExpiry {
			t.Fatalf("accepted %q with a bad date or expiry", q)
		}
	})
}

func FuzzParseChunkHeader(f *testing.F) {
	f.Add("10000;chunk-signature=" + strings.Repeat("ad", 32))
	f.Add("0;chunk-signature=" + strings.Repeat("0", 64))
	f.Add("fffffffffffffff;chunk-signature=")
	f.Add(";")
	f.Fuzz(func(t *testing.T, line string) {
		var sig [32]byte
		n, err := sigv4.ParseChunkHeader([]byte(line), &sig)
		if err == nil && n < 0 {
			t.Fatalf("negative size %d from %q", n, line)
		}
	})
}

// FuzzChunkedReader feeds arbitrary aws-chunked bodies to the verifying
// decoder: it must end in an error or EOF, never panic or loop, and never
// return more than the declared length.
func FuzzChunkedReader(f *testing.F) {
	f.Add([]byte("5;chunk-signature="+strings.Repeat("0", 64)+"\r\nhello\r\n0;chunk-signature="+strings.Repeat("0", 64)+"\r\n\r\n"), int64(5))
	f.Add([]byte("ffffff;chunk-signature=x\r\n"), int64(1<<40))
	f.Add([]byte(""), int64(0))
	f.Fuzz(func(t *testing.T, body []byte, decoded int64) {
		if decoded < 0 {
			decoded = -decoded
		}
		r := sigv4.NewChunkedReader(bytes.NewReader(body), sigv4.Signed{AmzDate: []byte("20260304T050607Z"), Scope: []byte("20260304/us-east-1/s3/aws4_request")}, decoded)
		got, _ := io.ReadAll(r)
		if int64(len(got)) > decoded {
			t.Fatalf("read %d bytes, declared %d", len(got), decoded)
		}
	})
}

func FuzzVerifyPresignedV2(f *testing.F) {
	f.Add("AWSAccessKeyId=AKIDTEST&Expires=1772600767&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D", "/b/k")
	f.Add("AWSAccessKeyId=AKIDTEST&Expires=x&Signature=%zz&uploadId=1&acl", "/")
	f.Fuzz(func(t *testing.T, q, path string) {
		v := newVerifier(t, testNow)
		_ = v.VerifyPresignedV2(&sigv4.Request{Method: []byte("GET"), Path: []byte(path), Query: []byte(q)})
	})
}
