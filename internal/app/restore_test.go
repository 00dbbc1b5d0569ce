package app_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
)

// TestInvokeWhileRestoring restarts berth on a data dir whose endpoint
// takes a while to become ready: until it is, invocations must get a
// retryable 503 ServiceUnavailable on both the fast path (InvokeEndpoint)
// and net/http (the response stream), not a 400 that SDKs give up on.
func TestInvokeWhileRestoring(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	first := startServer(t, cfg)
	first.deploy(t, "slow", map[string]string{"TESTSERVER_PING_DELAY": "3s"}, "", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := first.app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	s := startServer(t, cfg)
	rt := sagemakerruntime.New(sagemakerruntime.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(s.url), Credentials: aws.AnonymousCredentials{},
		RetryMaxAttempts: 1,
	})
	check := func(path string, err error) {
		t.Helper()
		code, msg := apiError(err)
		var re *awshttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusServiceUnavailable || code != "ServiceUnavailable" {
			t.Fatalf("%s while restoring: %v (code %q: %s), want 503 ServiceUnavailable", path, err, code, msg)
		}
		if retry.NewStandard().IsErrorRetryable(err) != true {
			t.Fatalf("%s: the SDK would not retry %v", path, err)
		}
	}
	_, err := rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("slow"), ContentType: aws.String("text/plain"), Body: []byte("x")})
	check("InvokeEndpoint", err)
	_, err = rt.InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{EndpointName: aws.String("slow"), ContentType: aws.String("text/plain"), Body: []byte("x")})
	check("InvokeEndpointWithResponseStream", err)

	// The SDK's own retries carry a client through the restore.
	s.waitInService(t, "slow")
	if got, err := s.invoke(t, "slow", "back"); err != nil || got != "back" {
		t.Fatalf("after the restore: %q %v", got, err)
	}
}
