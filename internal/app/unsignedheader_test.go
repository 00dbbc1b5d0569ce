package app_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/smithy-go"
)

// addHeaderTransport adds headers to each request after the SDK signed
// it, as someone relaying or replaying a captured request could.
type addHeaderTransport map[string]string

func (h addHeaderTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestAuthUnsignedHeadersRefused: headers that choose what a request does
// (X-Amz-Target, S3's x-amz-* headers) cannot be added to a signed request.
// A signed InvokeEndpoint carries no X-Amz-Target, so adding one must not
// turn it into a control plane call answered with berth's state; adding
// x-amz-copy-source to a signed PUT must not copy another object.
func TestAuthUnsignedHeadersRefused(t *testing.T) {
	s := startAuthServer(t)
	ctx := context.Background()
	creds := credentials.NewStaticCredentialsProvider(testKeyID, testSecret, "")

	_, rt, _ := authClients(s.url, creds, addHeaderTransport{"X-Amz-Target": "SageMaker.ListEndpoints"})
	out, err := rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("any"), ContentType: aws.String("application/json"), Body: []byte("{}"),
	})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "IncompleteSignatureException" || !strings.Contains(ae.ErrorMessage(), "X-Amz-Target") {
		body := ""
		if out != nil {
			body = string(out.Body)
		}
		t.Fatalf("InvokeEndpoint with an unsigned X-Amz-Target added: err %v, body %q; want IncompleteSignatureException naming the header", err, body)
	}

	_, _, s3c := authClients(s.url, creds, http.DefaultTransport)
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bkt1")}); err != nil {
		t.Fatal(err)
	}
	for key, body := range map[string]string{"secret": "the secret", "mine": "mine"} {
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt1"), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	_, _, tampered := authClients(s.url, creds, addHeaderTransport{"X-Amz-Copy-Source": "/bkt1/secret"})
	_, err = tampered.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt1"), Key: aws.String("mine"), Body: bytes.NewReader([]byte("mine"))})
	if !errors.As(err, &ae) || ae.ErrorCode() != "AuthorizationHeaderMalformed" {
		t.Errorf("PutObject with an unsigned x-amz-copy-source added: err %v, want AuthorizationHeaderMalformed", err)
	}
	got, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt1"), Key: aws.String("mine")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if string(b) != "mine" {
		t.Errorf("object after the refused request = %q, want %q", b, "mine")
	}
}

// TestAuthErrorsSayHowToFix: a client signing with a key berth does not
// know is told where berth's keys are configured.
func TestAuthErrorsSayHowToFix(t *testing.T) {
	s := startAuthServer(t)
	sm, _, _ := authClients(s.url, credentials.NewStaticCredentialsProvider("AKIDUNKNOWN", testSecret, ""), http.DefaultTransport)
	_, err := sm.ListModels(context.Background(), nil)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "UnrecognizedClientException" || !strings.Contains(ae.ErrorMessage(), "auth.credentials") {
		t.Errorf("unknown key: %v; want UnrecognizedClientException naming auth.credentials", err)
	}
}
