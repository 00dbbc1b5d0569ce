package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/smithy-go"
)

// TestFastPathSwitch runs the same invocations against a server with the
// fast path (the default) and one with runtime_api.fast_path off, through
// the AWS SDK, and checks they answer alike; an answer larger than the
// runtime API's buffer, of unknown length, shows which path served it
// (net/http relays it chunked, the fast path with its length).
func TestFastPathSwitch(t *testing.T) {
	results := map[bool][]string{}
	for _, fast := range []bool{true, false} {
		cfg := testConfig(t, t.TempDir())
		cfg.RuntimeAPI.FastPath = fast
		s := startServer(t, cfg)
		s.deploy(t, "echo", nil, "", 1)
		for _, in := range []*sagemakerruntime.InvokeEndpointInput{
			{EndpointName: aws.String("echo"), ContentType: aws.String("text/csv"), Body: []byte("1,2")},
			{EndpointName: aws.String("echo"), Body: []byte("x"), CustomAttributes: aws.String("k=v"), Accept: aws.String("text/csv")},
			{EndpointName: aws.String("echo"), Body: []byte("x"), TargetVariant: aws.String("AllTraffic")},
			{EndpointName: aws.String("echo"), Body: []byte("x"), TargetVariant: aws.String("Other")},
			{EndpointName: aws.String("echo"), Body: []byte("x"), TargetModel: aws.String("m.tar.gz")},
			{EndpointName: aws.String("echo"), Body: []byte("x"), SessionId: aws.String("NEW_SESSION")},
			{EndpointName: aws.String("echo"), Body: []byte("x"), InferenceId: aws.String(" bad")},
			{EndpointName: aws.String("missing"), Body: []byte("x")},
		} {
			out, err := s.rt.InvokeEndpoint(context.Background(), in)
			var r string
			var ae smithy.APIError
			switch {
			case errors.As(err, &ae):
				r = ae.ErrorCode() + ": " + ae.ErrorMessage()
			case err != nil:
				t.Fatalf("fast path %v: %v", fast, err)
			default:
				r = fmt.Sprintf("%s %s %s %q", aws.ToString(out.ContentType), aws.ToString(out.InvokedProductionVariant), aws.ToString(out.CustomAttributes), out.Body)
			}
			results[fast] = append(results[fast], r)
		}

		big := bytes.Repeat([]byte("0123456789abcdef"), 128<<10) // 2 MiB
		resp, err := http.Post(s.url+"/endpoints/echo/invocations", "application/octet-stream", bytes.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || !bytes.Equal(body, big) {
			t.Fatalf("fast path %v: large echo: %d %v", fast, resp.StatusCode, err)
		}
		if sized := resp.ContentLength == int64(len(big)); sized != fast {
			t.Errorf("fast path %v: large answer had Content-Length %d: served by the wrong path", fast, resp.ContentLength)
		}
	}
	for i := range results[true] {
		if results[true][i] != results[false][i] {
			t.Errorf("case %d:\nfast path: %s\nnet/http:  %s", i, results[true][i], results[false][i])
		}
	}
	t.Logf("answers: %q", results[true])
}
