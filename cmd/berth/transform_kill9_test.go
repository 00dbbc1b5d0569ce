package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/berth-io/berth/internal/testserver/testserverbin"
)

// TestTransformJobSurvivesKill9 runs the real berth binary: a transform
// job killed with -9 while it is half done completes after a restart on
// the same data dir, and its output is byte for byte that of a clean run
// of the same job; the killed berth's model processes do not survive it.
func TestTransformJobSurvivesKill9(t *testing.T) {
	bin := buildBerth(t)
	// Each answer takes 100 ms, and an object is two or three batches of
	// at most 1 MB sent one at a time, so the job runs for a couple of
	// seconds: long enough to be killed between its objects.
	cfgFile := writeConfig(t, fmt.Sprintf("images:\n  test/upper:1:\n    command: [%q]\n    env: {TESTSERVER_MODE: upper, TESTSERVER_SLEEP: 100ms}\n", testserverbin.Build(t))+sameUser())
	dataDir := t.TempDir()
	addr := freeAddr(t)
	sm, _, s3c := sdkClients("http://" + addr)
	ctx := context.Background()

	berth := startBerth(t, bin, addr, dataDir, cfgFile)
	for _, b := range []string{"batch-in", "batch-out"} {
		if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	const objects = 6
	inputs := map[string][]byte{}
	for i := range objects {
		var b bytes.Buffer
		for l := range 9000 + 1000*i {
			fmt.Fprintf(&b, "obj-%d-line-%06d-%s\n", i, l, strings.Repeat("x", 120))
		}
		inputs[fmt.Sprintf("part-%d.txt.out", i)] = b.Bytes()
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("batch-in"), Key: aws.String(fmt.Sprintf("data/part-%d.txt", i)), Body: bytes.NewReader(b.Bytes())}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String("m"),
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/r"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("test/upper:1")},
	}); err != nil {
		t.Fatal(err)
	}
	create := func(name string) {
		t.Helper()
		if _, err := sm.CreateTransformJob(ctx, &sagemaker.CreateTransformJobInput{
			TransformJobName:        aws.String(name),
			ModelName:               aws.String("m"),
			BatchStrategy:           smtypes.BatchStrategyMultiRecord,
			MaxPayloadInMB:          aws.Int32(1),
			MaxConcurrentTransforms: aws.Int32(1),
			TransformInput: &smtypes.TransformInput{
				DataSource: &smtypes.TransformDataSource{S3DataSource: &smtypes.TransformS3DataSource{
					S3DataType: smtypes.S3DataTypeS3Prefix,
					S3Uri:      aws.String("s3://batch-in/data/"),
				}},
				ContentType: aws.String("text/plain"),
				SplitType:   smtypes.SplitTypeLine,
			},
			TransformOutput: &smtypes.TransformOutput{S3OutputPath: aws.String("s3://batch-out/" + name), AssembleWith: smtypes.AssemblyTypeLine},
			TransformResources: &smtypes.TransformResources{
				InstanceType:  smtypes.TransformInstanceTypeMlM5Large,
				InstanceCount: aws.Int32(1),
			},
		}); err != nil {
			t.Fatalf("CreateTransformJob %s: %v", name, err)
		}
	}
	describe := func(name string) *sagemaker.DescribeTransformJobOutput {
		t.Helper()
		d, err := sm.DescribeTransformJob(ctx, &sagemaker.DescribeTransformJobInput{TransformJobName: aws.String(name)})
		if err != nil {
			t.Fatalf("DescribeTransformJob %s: %v", name, err)
		}
		return d
	}
	waitCompleted := func(name string) {
		t.Helper()
		w := sagemaker.NewTransformJobCompletedOrStoppedWaiter(sm, func(o *sagemaker.TransformJobCompletedOrStoppedWaiterOptions) {
			o.MinDelay, o.MaxDelay = 20*time.Millisecond, 200*time.Millisecond
		})
		w.Wait(ctx, &sagemaker.DescribeTransformJobInput{TransformJobName: aws.String(name)}, 25*time.Second)
		if d := describe(name); d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
			t.Fatalf("job %s: %s %q, want Completed", name, d.TransformJobStatus, aws.ToString(d.FailureReason))
		}
	}
	outputs := func(name string) map[string][]byte {
		t.Helper()
		l, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("batch-out"), Prefix: aws.String(name + "/")})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string][]byte{}
		for _, o := range l.Contents {
			g, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("batch-out"), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(g.Body)
			g.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			got[strings.TrimPrefix(aws.ToString(o.Key), name+"/")] = body
		}
		return got
	}

	// The reference: the same job, never interrupted.
	create("clean")
	waitCompleted("clean")
	want := outputs("clean")
	if len(want) != objects {
		t.Fatalf("the clean run wrote %d objects, want %d", len(want), objects)
	}
	for k, in := range inputs {
		if !bytes.Equal(want[k], bytes.ToUpper(in)) {
			t.Fatalf("the clean run's %s is not its input upper-cased", k)
		}
	}

	// Kill berth once the job has finished an object but not all of them.
	create("killed")
	waitUntil(t, 20*time.Second, func() bool {
		l, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("batch-out"), Prefix: aws.String("killed/")})
		return err == nil && aws.ToInt32(l.KeyCount) > 0
	})
	if d := describe("killed"); d.TransformJobStatus != smtypes.TransformJobStatusInProgress {
		t.Fatalf("job %s when killed, want InProgress", d.TransformJobStatus)
	}
	done := len(outputs("killed"))
	models := modelPIDs(t, berth.Process.Pid)
	if err := berth.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	berth.Wait()
	if done == objects {
		t.Fatal("the job finished before the kill; nothing to resume")
	}
	if len(models) == 0 {
		t.Fatal("no model process ran the job when berth was killed")
	}
	waitExited(t, 10*time.Second, models)

	berth = startBerth(t, bin, addr, dataDir, cfgFile)
	waitCompleted("killed")
	got := outputs("killed")
	if len(got) != len(want) {
		t.Errorf("after the restart: %d output objects, want %d", len(got), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("output %s missing after the restart", k)
		case !bytes.Equal(g, w):
			t.Errorf("output %s: %d bytes differ from the clean run's %d", k, len(g), len(w))
		}
	}
	// The resumed job's instance ends with it.
	waitUntil(t, 10*time.Second, func() bool { return len(modelPIDs(t, berth.Process.Pid)) == 0 })
	t.Logf("%d of %d objects were done at the kill", done, objects)
}
