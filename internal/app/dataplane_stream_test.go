package app_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	rttypes "github.com/aws/aws-sdk-go-v2/service/sagemakerruntime/types"
)

const streamedBody = "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\nchunk 5\n"

func TestDataplaneResponseStreamGoSDK(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	s.deploy(t, "streamer", map[string]string{"TESTSERVER_MODE": "stream", "TESTSERVER_CHUNKS": "6", "TESTSERVER_CHUNK_DELAY": "20ms"}, "", 1)
	s.deploy(t, "breaker", map[string]string{"TESTSERVER_MODE": "stream-break", "TESTSERVER_CHUNKS": "6", "TESTSERVER_CHUNK_DELAY": "20ms"}, "", 1)

	out, err := s.rt.InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
		EndpointName:     aws.String("streamer"),
		Body:             []byte("prompt"),
		ContentType:      aws.String("text/plain"),
		CustomAttributes: aws.String("attr=1"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(out.ContentType) != "text/plain" || aws.ToString(out.InvokedProductionVariant) != "AllTraffic" ||
		aws.ToString(out.CustomAttributes) != "attr=1" {
		t.Errorf("headers: content type %q, variant %q, attributes %q", aws.ToString(out.ContentType),
			aws.ToString(out.InvokedProductionVariant), aws.ToString(out.CustomAttributes))
	}
	stream := out.GetStream()
	var got strings.Builder
	parts := 0
	for ev := range stream.Events() {
		pp, ok := ev.(*rttypes.ResponseStreamMemberPayloadPart)
		if !ok {
			t.Fatalf("event %T", ev)
		}
		got.Write(pp.Value.Bytes)
		parts++
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	stream.Close()
	if got.String() != streamedBody {
		t.Errorf("stream = %q", got.String())
	}
	// The chunks were flushed 20 ms apart, so they came as separate parts.
	if parts < 3 {
		t.Errorf("%d payload parts, want the chunks relayed as they came", parts)
	}

	// A stream that breaks ends with a ModelStreamError after its first
	// parts.
	out, err = s.rt.InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
		EndpointName: aws.String("breaker"), Body: []byte("prompt"), ContentType: aws.String("text/plain"),
	})
	if err != nil {
		t.Fatal(err)
	}
	stream = out.GetStream()
	got.Reset()
	for ev := range stream.Events() {
		if pp, ok := ev.(*rttypes.ResponseStreamMemberPayloadPart); ok {
			got.Write(pp.Value.Bytes)
		}
	}
	var mse *rttypes.ModelStreamError
	if err := stream.Err(); !errors.As(err, &mse) || aws.ToString(mse.ErrorCode_) != "StreamBroken" {
		t.Errorf("broken stream error = %v", err)
	}
	stream.Close()
	if got.String() != "chunk 0\nchunk 1\nchunk 2\n" {
		t.Errorf("parts before the break = %q", got.String())
	}

	// Errors before the stream starts are ordinary AWS errors.
	_, err = s.rt.InvokeEndpointWithResponseStream(ctx, &sagemakerruntime.InvokeEndpointWithResponseStreamInput{
		EndpointName: aws.String("nowhere"), Body: []byte("x"),
	})
	if code, _ := apiError(err); code != "ValidationError" {
		t.Errorf("unknown endpoint: %v", err)
	}
}

// botoStreamScript reads a response stream with boto3 and prints the
// concatenated parts, or the error code of a broken stream.
const botoStreamScript = `
import sys, boto3, botocore.exceptions
rt = boto3.client("sagemaker-runtime", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret")
if not hasattr(rt, "invoke_endpoint_with_response_stream"):
    print("SKIP: botocore " + boto3.__version__ + " has no invoke_endpoint_with_response_stream")
    sys.exit(0)
out = rt.invoke_endpoint_with_response_stream(EndpointName=sys.argv[2], Body=b"prompt", ContentType="text/plain")
assert out["InvokedProductionVariant"] == "AllTraffic", out
assert out["ContentType"] == "text/plain", out
data = b""
try:
    for ev in out["Body"]:
        data += ev["PayloadPart"]["Bytes"]
except botocore.exceptions.EventStreamError as e:
    sys.stdout.write("ERROR " + e.response["Error"]["Code"] + " ")
sys.stdout.write(data.decode())
`

// TestDataplaneResponseStreamBoto3 reads the same stream with boto3, from
// the first python3 on PATH (or /usr/bin/python3) whose botocore knows
// InvokeEndpointWithResponseStream. Debian's botocore 1.29 does not.
func TestDataplaneResponseStreamBoto3(t *testing.T) {
	var python string
	for _, cand := range []string{"python3", "/usr/bin/python3"} {
		p, err := exec.LookPath(cand)
		if err != nil {
			continue
		}
		check := exec.Command(p, "-c", "import boto3; assert hasattr(boto3.client('sagemaker-runtime', region_name='us-east-1'), 'invoke_endpoint_with_response_stream')")
		if check.Run() == nil {
			python = p
			break
		}
	}
	if python == "" {
		t.Skip("no python3 with a boto3 that has invoke_endpoint_with_response_stream")
	}
	s := startServer(t, testConfig(t, t.TempDir()))
	s.deploy(t, "streamer", map[string]string{"TESTSERVER_MODE": "stream", "TESTSERVER_CHUNKS": "6", "TESTSERVER_CHUNK_DELAY": "5ms"}, "", 1)
	s.deploy(t, "breaker", map[string]string{"TESTSERVER_MODE": "stream-break", "TESTSERVER_CHUNKS": "6", "TESTSERVER_CHUNK_DELAY": "5ms"}, "", 1)
	run := func(endpoint string) string {
		cmd := exec.Command(python, "-c", botoStreamScript, s.url, endpoint)
		cmd.Env = append(os.Environ(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("boto3 on %s: %v\n%s", endpoint, err, out)
		}
		return string(out)
	}
	if got := run("streamer"); got != streamedBody {
		t.Errorf("boto3 stream = %q", got)
	}
	if got := run("breaker"); got != "ERROR ModelStreamError chunk 0\nchunk 1\nchunk 2\n" {
		t.Errorf("boto3 broken stream = %q", got)
	}
}
