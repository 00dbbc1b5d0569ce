package sigv4_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/berth-io/berth/internal/awsapi/sigv4"
	"github.com/berth-io/berth/internal/h1"
)

// fastRequest is an InvokeEndpoint request as the fast path sees it:
// header fields as received, body in memory.
func fastRequest(t testing.TB) (*sigv4.Request, []byte) {
	t.Helper()
	body := []byte(strings.Repeat("0.1,0.2,0.3,0.4\n", 8))
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:7070/endpoints/bench/invocations", nil)
	req.Header.Set("Content-Type", "text/csv")
	req.Header.Set("Accept", "application/json")
	req.ContentLength = int64(len(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), goodCreds, req, hashHex(body), "sagemaker", "us-east-1", testNow); err != nil {
		t.Fatal(err)
	}
	sr := &sigv4.Request{Method: []byte("POST"), Path: []byte(req.URL.Path)}
	sr.Header = append(sr.Header, h1.Field{Name: []byte("Host"), Value: []byte(req.URL.Host)})
	for k, vs := range req.Header {
		for _, v := range vs {
			sr.Header = append(sr.Header, h1.Field{Name: []byte(k), Value: []byte(v)})
		}
	}
	sr.Header = append(sr.Header, h1.Field{Name: []byte("Content-Length"), Value: []byte("128")})
	return sr, body
}

// verifyBuffered is what awsapi.VerifyBuffered does for a request with
// no x-amz-content-sha256 (kept here so the package tests stand alone).
func verifyBuffered(v *sigv4.Verifier, req *sigv4.Request, body []byte) (sigv4.Signed, error) {
	a, err := sigv4.Parse(req)
	if err != nil {
		return sigv4.Signed{}, err
	}
	var sum [64]byte
	return v.Verify(req, &a, sigv4.AppendPayloadHash(sum[:0], body))
}

// BenchmarkVerify measures verifying one signed InvokeEndpoint request
// (parse, cached signing key, canonical request, HMAC, body hash).
func BenchmarkVerify(b *testing.B) {
	v := newVerifier(b, testNow)
	req, body := fastRequest(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := verifyBuffered(v, req, body); err != nil {
			b.Fatal(err)
		}
	}
}
