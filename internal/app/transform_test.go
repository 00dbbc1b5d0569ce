package app_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/berth-io/berth/internal/testutil"
)

// jobInput builds a CreateTransformJob request over s3://in/<prefix>
// writing to s3://out/<name>/, with one ml.m5.large instance; mod
// changes it.
func jobInput(name, model, prefix string, mod func(*sagemaker.CreateTransformJobInput)) *sagemaker.CreateTransformJobInput {
	in := &sagemaker.CreateTransformJobInput{
		TransformJobName: aws.String(name),
		ModelName:        aws.String(model),
		TransformInput: &smtypes.TransformInput{
			DataSource: &smtypes.TransformDataSource{S3DataSource: &smtypes.TransformS3DataSource{
				S3DataType: smtypes.S3DataTypeS3Prefix,
				S3Uri:      aws.String("s3://batch-in/" + prefix),
			}},
			ContentType: aws.String("text/plain"),
			SplitType:   smtypes.SplitTypeLine,
		},
		TransformOutput: &smtypes.TransformOutput{S3OutputPath: aws.String("s3://batch-out/" + name)},
		TransformResources: &smtypes.TransformResources{
			InstanceType:  smtypes.TransformInstanceTypeMlM5Large,
			InstanceCount: aws.Int32(1),
		},
	}
	if mod != nil {
		mod(in)
	}
	return in
}

// waitJob waits with the SDK's waiter and returns the final description.
func (s *server) waitJob(t *testing.T, name string, timeout time.Duration) *sagemaker.DescribeTransformJobOutput {
	t.Helper()
	w := sagemaker.NewTransformJobCompletedOrStoppedWaiter(s.sm, func(o *sagemaker.TransformJobCompletedOrStoppedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 200*time.Millisecond
	})
	w.Wait(context.Background(), &sagemaker.DescribeTransformJobInput{TransformJobName: aws.String(name)}, timeout)
	out, err := s.sm.DescribeTransformJob(context.Background(), &sagemaker.DescribeTransformJobInput{TransformJobName: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeTransformJob %s: %v", name, err)
	}
	return out
}

func (s *server) getObject(t *testing.T, bucket, key string) ([]byte, error) {
	t.Helper()
	out, err := s.s3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

// outputKeys lists the keys under prefix in bucket.
func (s *server) outputKeys(t *testing.T, bucket, prefix string) []string {
	t.Helper()
	out, err := s.s3.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		return nil
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

// lines returns n distinct lines of about width bytes each, numbered so
// that any reordering shows.
func lines(tag string, n, width int) []byte {
	var b bytes.Buffer
	for i := range n {
		l := fmt.Sprintf("%s-line-%06d-", tag, i)
		b.WriteString(l + strings.Repeat("x", max(0, width-len(l))) + "\n")
	}
	return b.Bytes()
}

// Every combination of batch strategy and assembly over several objects,
// one of them several payloads long, checking every output byte. The
// model upper-cases what it gets.
func TestTransformJobOutputs(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.createModel(t, "upper", map[string]string{"TESTSERVER_MODE": "upper"}, "")
	s.upload(t, "batch-out", "keep", []byte("x"))
	inputs := map[string][]byte{
		"data/a.txt":     []byte("one\ntwo\nthree\n"),
		"data/b.txt":     []byte("no final newline\nlast"),
		"data/sub/c.txt": lines("big", 420, 10000), // ~4.2 MB: five 1 MB payloads
		"data/empty.txt": {},
	}
	for k, v := range inputs {
		s.upload(t, "batch-in", k, v)
	}
	s.upload(t, "batch-in", "other/skip.txt", []byte("not under the prefix\n"))
	// The expected output: each Line record comes back upper-cased with
	// its newline, whatever the batching.
	want := func(k string) []byte {
		v := inputs[k]
		if len(v) > 0 && v[len(v)-1] != '\n' {
			v = append(bytes.Clone(v), '\n')
		}
		return bytes.ToUpper(v)
	}
	ctx := context.Background()
	i := 0
	for _, strategy := range []smtypes.BatchStrategy{smtypes.BatchStrategySingleRecord, smtypes.BatchStrategyMultiRecord} {
		for _, assemble := range []smtypes.AssemblyType{smtypes.AssemblyTypeNone, smtypes.AssemblyTypeLine} {
			i++
			name := fmt.Sprintf("job-%d", i)
			t.Run(fmt.Sprintf("%s-%s", strategy, assemble), func(t *testing.T) {
				_, err := s.sm.CreateTransformJob(ctx, jobInput(name, "upper", "data/", func(in *sagemaker.CreateTransformJobInput) {
					in.BatchStrategy = strategy
					in.MaxPayloadInMB = aws.Int32(1)
					in.MaxConcurrentTransforms = aws.Int32(4)
					in.TransformOutput.AssembleWith = assemble
					in.TransformOutput.Accept = aws.String("text/plain")
					in.TransformResources.InstanceCount = aws.Int32(2)
				}))
				if err != nil {
					t.Fatal(err)
				}
				d := s.waitJob(t, name, 60*time.Second)
				if d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
					t.Fatalf("status %s, reason %q", d.TransformJobStatus, aws.ToString(d.FailureReason))
				}
				if d.TransformStartTime == nil || d.TransformEndTime == nil || d.TransformEndTime.Before(*d.TransformStartTime) {
					t.Errorf("times: start %v end %v", d.TransformStartTime, d.TransformEndTime)
				}
				if d.BatchStrategy != strategy || aws.ToInt32(d.MaxPayloadInMB) != 1 || d.TransformOutput.AssembleWith != assemble {
					t.Errorf("describe does not echo the request: %+v", d)
				}
				for k := range inputs {
					key := name + "/" + strings.TrimPrefix(k, "data/") + ".out"
					got, err := s.getObject(t, "batch-out", key)
					if err != nil {
						t.Fatalf("output %s: %v", key, err)
					}
					if w := want(k); !bytes.Equal(got, w) {
						t.Errorf("output %s: %d bytes, want %d; first difference at %d", key, len(got), len(w), firstDiff(got, w))
					}
				}
				if keys := s.outputKeys(t, "batch-out", name+"/"); len(keys) != len(inputs) {
					t.Errorf("outputs %v, want one per input object", keys)
				}
			})
		}
	}

	// SplitType None: each object is one record; AssembleWith Line adds
	// the newline the answer lacks, None does not.
	s.upload(t, "batch-in", "whole/x.bin", []byte("abc"))
	for _, assemble := range []smtypes.AssemblyType{smtypes.AssemblyTypeNone, smtypes.AssemblyTypeLine} {
		name := "whole-" + strings.ToLower(string(assemble))
		_, err := s.sm.CreateTransformJob(ctx, jobInput(name, "upper", "whole/", func(in *sagemaker.CreateTransformJobInput) {
			in.TransformInput.SplitType = smtypes.SplitTypeNone
			in.TransformOutput.AssembleWith = assemble
		}))
		if err != nil {
			t.Fatal(err)
		}
		if d := s.waitJob(t, name, 30*time.Second); d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
			t.Fatalf("%s: status %s, reason %q", name, d.TransformJobStatus, aws.ToString(d.FailureReason))
		}
		got, _ := s.getObject(t, "batch-out", name+"/x.bin.out")
		want := map[smtypes.AssemblyType]string{smtypes.AssemblyTypeNone: "ABC", smtypes.AssemblyTypeLine: "ABC\n"}[assemble]
		if string(got) != want {
			t.Errorf("%s: output %q, want %q", name, got, want)
		}
	}

	// Listing: filters, sort and pages.
	list, err := s.sm.ListTransformJobs(ctx, &sagemaker.ListTransformJobsInput{NameContains: aws.String("job-"), SortBy: smtypes.SortByName, SortOrder: smtypes.SortOrderAscending})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, j := range list.TransformJobSummaries {
		names = append(names, aws.ToString(j.TransformJobName))
		if j.TransformJobStatus != smtypes.TransformJobStatusCompleted || j.TransformEndTime == nil {
			t.Errorf("summary %+v", j)
		}
	}
	if strings.Join(names, ",") != "job-1,job-2,job-3,job-4" {
		t.Errorf("NameContains job-, by name: %v", names)
	}
	var paged []string
	var token *string
	for {
		page, err := s.sm.ListTransformJobs(ctx, &sagemaker.ListTransformJobsInput{MaxResults: aws.Int32(2), NextToken: token, StatusEquals: smtypes.TransformJobStatusCompleted})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page.TransformJobSummaries {
			paged = append(paged, aws.ToString(j.TransformJobName))
		}
		if token = page.NextToken; token == nil {
			break
		}
	}
	if len(paged) != 6 || paged[0] != "whole-line" {
		t.Errorf("paged by creation time, newest first: %v", paged)
	}
	if out, _ := s.sm.ListTransformJobs(ctx, &sagemaker.ListTransformJobsInput{StatusEquals: smtypes.TransformJobStatusFailed}); len(out.TransformJobSummaries) != 0 {
		t.Errorf("StatusEquals Failed: %+v", out.TransformJobSummaries)
	}

	// Tags on the job's ARN.
	d, _ := s.sm.DescribeTransformJob(ctx, &sagemaker.DescribeTransformJobInput{TransformJobName: aws.String("job-1")})
	if _, err := s.sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: d.TransformJobArn, Tags: []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("ml")}}}); err != nil {
		t.Fatal(err)
	}
	tags, err := s.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: d.TransformJobArn})
	if err != nil || len(tags.Tags) != 1 || aws.ToString(tags.Tags[0].Key) != "team" {
		t.Fatalf("ListTags: %+v, %v", tags, err)
	}
	if d2, _ := s.sm.DescribeTransformJob(ctx, &sagemaker.DescribeTransformJobInput{TransformJobName: aws.String("job-1")}); d2.TransformJobStatus != smtypes.TransformJobStatusCompleted {
		t.Errorf("tagging changed the job: %+v", d2)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// Requests SageMaker refuses, and what berth does not do yet, fail with
// a ValidationException and store nothing.
func TestTransformJobValidation(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.upload(t, "batch-out", "keep", []byte("x"))
	s.createModel(t, "m", nil, "")
	ctx := context.Background()
	cases := []struct {
		name string
		mod  func(*sagemaker.CreateTransformJobInput)
		want string
	}{
		{"bad name", func(in *sagemaker.CreateTransformJobInput) { in.TransformJobName = aws.String("bad_name") }, "transformJobName"},
		{"payload over 100", func(in *sagemaker.CreateTransformJobInput) { in.MaxPayloadInMB = aws.Int32(101) }, "maxPayloadInMB"},
		{"concurrency times payload", func(in *sagemaker.CreateTransformJobInput) {
			in.MaxConcurrentTransforms = aws.Int32(20)
			in.MaxPayloadInMB = aws.Int32(6)
		}, "must not exceed 100 MB"},
		{"multi-record without split", func(in *sagemaker.CreateTransformJobInput) {
			in.BatchStrategy = smtypes.BatchStrategyMultiRecord
			in.TransformInput.SplitType = smtypes.SplitTypeNone
		}, "BatchStrategy MultiRecord"},
		{"unknown model", func(in *sagemaker.CreateTransformJobInput) { in.ModelName = aws.String("nope") }, "Could not find model"},
		{"bad input uri", func(in *sagemaker.CreateTransformJobInput) {
			in.TransformInput.DataSource.S3DataSource.S3Uri = aws.String("ftp://in/x")
		}, "s3Uri"},
		{"bad output uri", func(in *sagemaker.CreateTransformJobInput) { in.TransformOutput.S3OutputPath = aws.String("out") }, "s3OutputPath"},
		{"instance count 0", func(in *sagemaker.CreateTransformJobInput) { in.TransformResources.InstanceCount = aws.Int32(0) }, "instanceCount"},
		{"retries over 3", func(in *sagemaker.CreateTransformJobInput) {
			in.ModelClientConfig = &smtypes.ModelClientConfig{InvocationsMaxRetries: aws.Int32(4)}
		}, "invocationsMaxRetries"},
		{"manifest", func(in *sagemaker.CreateTransformJobInput) {
			in.TransformInput.DataSource.S3DataSource.S3DataType = smtypes.S3DataTypeManifestFile
		}, "does not support S3DataType ManifestFile for transform jobs yet"},
		{"invalid input filter", func(in *sagemaker.CreateTransformJobInput) {
			in.TransformInput.ContentType = aws.String("text/csv")
			in.DataProcessing = &smtypes.DataProcessing{InputFilter: aws.String("$[?@.a]")}
		}, `Invalid DataProcessing: InputFilter: "$[?@.a]"`},
		{"invalid output filter", func(in *sagemaker.CreateTransformJobInput) {
			in.TransformInput.ContentType = aws.String("text/csv")
			in.DataProcessing = &smtypes.DataProcessing{OutputFilter: aws.String("features")}
		}, `Invalid DataProcessing: OutputFilter: "features"`},
		{"join on a content type the filters cannot read", func(in *sagemaker.CreateTransformJobInput) {
			in.DataProcessing = &smtypes.DataProcessing{JoinSource: smtypes.JoinSourceInput}
		}, `Invalid DataProcessing: ContentType "text/plain"`},
		{"filters on TFRecord", func(in *sagemaker.CreateTransformJobInput) {
			in.TransformInput.ContentType = aws.String("application/json")
			in.TransformInput.SplitType = smtypes.SplitTypeTfrecord
			in.DataProcessing = &smtypes.DataProcessing{InputFilter: aws.String("$.features")}
		}, "SplitType TFRecord"},
		{"payload 0", func(in *sagemaker.CreateTransformJobInput) { in.MaxPayloadInMB = aws.Int32(0) }, "MaxPayloadInMB 0"},
		{"loader variable in the environment", func(in *sagemaker.CreateTransformJobInput) {
			in.Environment = map[string]string{"LD_PRELOAD": "../../artifacts/x.so"}
		}, "LD_PRELOAD"},
		{"berth's contract variable in the environment", func(in *sagemaker.CreateTransformJobInput) {
			in.Environment = map[string]string{"SM_MODEL_DIR": "/"}
		}, "SM_MODEL_DIR"},
		{"NUL in an environment value", func(in *sagemaker.CreateTransformJobInput) {
			in.Environment = map[string]string{"FOO": "a\x00b"}
		}, "NUL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := s.sm.CreateTransformJob(ctx, jobInput("v", "m", "x/", c.mod))
			code, msg := apiError(err)
			if code != "ValidationException" || !strings.Contains(msg, c.want) {
				t.Fatalf("got %s: %s; want ValidationException mentioning %q", code, msg, c.want)
			}
		})
	}
	list, err := s.sm.ListTransformJobs(ctx, &sagemaker.ListTransformJobsInput{})
	if err != nil || len(list.TransformJobSummaries) != 0 {
		t.Fatalf("refused requests stored jobs: %+v, %v", list, err)
	}
	if _, err := s.sm.DescribeTransformJob(ctx, &sagemaker.DescribeTransformJobInput{TransformJobName: aws.String("v")}); err == nil {
		t.Fatal("DescribeTransformJob of a refused job succeeded")
	} else if code, _ := apiError(err); code != "ValidationException" {
		t.Fatalf("DescribeTransformJob of an unknown job: %v", err)
	}
	// A name is taken once used.
	s.upload(t, "batch-in", "x/a", []byte("a\n"))
	if _, err := s.sm.CreateTransformJob(ctx, jobInput("dup", "m", "x/", nil)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.sm.CreateTransformJob(ctx, jobInput("dup", "m", "x/", nil)); err == nil {
		t.Fatal("a second job of the same name was accepted")
	} else if code, _ := apiError(err); code != "ResourceInUse" {
		t.Fatalf("duplicate name: %v", err)
	}
	s.waitJob(t, "dup", 30*time.Second)
	// A missing prefix fails the job with a reason naming it.
	if _, err := s.sm.CreateTransformJob(ctx, jobInput("missing", "m", "nothing-here/", nil)); err != nil {
		t.Fatal(err)
	}
	d := s.waitJob(t, "missing", 30*time.Second)
	if d.TransformJobStatus != smtypes.TransformJobStatusFailed || !strings.Contains(aws.ToString(d.FailureReason), "s3://batch-in/nothing-here/") {
		t.Fatalf("missing input: %s %q", d.TransformJobStatus, aws.ToString(d.FailureReason))
	}
}

// A record the model rejects (4xx) fails the job, naming the object and
// the record, and that object gets no output.
func TestTransformJobModelRejectsRecord(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.upload(t, "batch-out", "keep", []byte("x"))
	s.createModel(t, "picky", map[string]string{"TESTSERVER_REJECT": "poison"}, "")
	s.upload(t, "batch-in", "p/bad.txt", []byte("ok 1\nok 2\npoison\nok 4\n"))
	ctx := context.Background()
	if _, err := s.sm.CreateTransformJob(ctx, jobInput("rejects", "picky", "p/", nil)); err != nil {
		t.Fatal(err)
	}
	d := s.waitJob(t, "rejects", 30*time.Second)
	reason := aws.ToString(d.FailureReason)
	if d.TransformJobStatus != smtypes.TransformJobStatusFailed || !strings.Contains(reason, "s3://batch-in/p/bad.txt") || !strings.Contains(reason, "record 3") || !strings.Contains(reason, "400") {
		t.Fatalf("status %s, reason %q", d.TransformJobStatus, reason)
	}
	if _, err := s.getObject(t, "batch-out", "rejects/bad.txt.out"); err == nil {
		t.Fatal("the failed object has an output")
	}
}

// StopTransformJob stops a running job within seconds and leaves no
// partial output.
func TestTransformJobStop(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.upload(t, "batch-out", "keep", []byte("x"))
	s.createModel(t, "slow", map[string]string{"TESTSERVER_SLEEP": "50ms"}, "")
	s.upload(t, "batch-in", "s/long.txt", lines("slow", 2000, 10))
	ctx := context.Background()
	if _, err := s.sm.CreateTransformJob(ctx, jobInput("stopme", "slow", "s/", nil)); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, func() error {
		d, err := s.sm.DescribeTransformJob(ctx, &sagemaker.DescribeTransformJobInput{TransformJobName: aws.String("stopme")})
		if err != nil || d.TransformStartTime == nil {
			return fmt.Errorf("not started: %v", err)
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond) // some records in flight
	start := time.Now()
	if _, err := s.sm.StopTransformJob(ctx, &sagemaker.StopTransformJobInput{TransformJobName: aws.String("stopme")}); err != nil {
		t.Fatal(err)
	}
	d := s.waitJob(t, "stopme", 20*time.Second)
	if d.TransformJobStatus != smtypes.TransformJobStatusStopped {
		t.Fatalf("status %s after stop, reason %q", d.TransformJobStatus, aws.ToString(d.FailureReason))
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("stopping took %s", took)
	}
	if keys := s.outputKeys(t, "batch-out", "stopme/"); len(keys) != 0 {
		t.Fatalf("stopped job left output %v", keys)
	}
	// Stopping an ended job changes nothing.
	if _, err := s.sm.StopTransformJob(ctx, &sagemaker.StopTransformJobInput{TransformJobName: aws.String("stopme")}); err != nil {
		t.Fatal(err)
	}
}

// A job in progress when berth shuts down resumes after the restart,
// skips the objects it had finished, and its output is identical to an
// uninterrupted run's.
func TestTransformJobResumesAfterRestart(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	s := startServer(t, cfg)
	s.upload(t, "batch-out", "keep", []byte("x"))
	s.createModel(t, "slowupper", map[string]string{"TESTSERVER_MODE": "upper", "TESTSERVER_SLEEP": "20ms"}, "")
	inputs := map[string][]byte{}
	for i := range 6 {
		k := fmt.Sprintf("r/obj-%d.txt", i)
		inputs[k] = lines(fmt.Sprintf("o%d", i), 40, 20)
		s.upload(t, "batch-in", k, inputs[k])
	}
	ctx := context.Background()
	if _, err := s.sm.CreateTransformJob(ctx, jobInput("resume", "slowupper", "r/", nil)); err != nil {
		t.Fatal(err)
	}
	// One object takes about 40 × 20 ms: wait for the first output, then
	// stop berth with the job in the middle.
	testutil.WaitFor(t, 20*time.Second, func() error {
		if len(s.outputKeys(t, "batch-out", "resume/")) == 0 {
			return fmt.Errorf("no output yet")
		}
		return nil
	})
	before := map[string]string{}
	for _, k := range s.outputKeys(t, "batch-out", "resume/") {
		h, err := s.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("batch-out"), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		before[k] = h.LastModified.String()
	}
	shutCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if err := s.app.Shutdown(shutCtx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if len(before) == len(inputs) {
		t.Fatal("the job finished before the restart; nothing to resume")
	}

	s = startServer(t, cfg)
	d := s.waitJob(t, "resume", 60*time.Second)
	if d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
		t.Fatalf("after restart: %s %q", d.TransformJobStatus, aws.ToString(d.FailureReason))
	}
	for k, v := range inputs {
		key := "resume/" + strings.TrimPrefix(k, "r/") + ".out"
		got, err := s.getObject(t, "batch-out", key)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if !bytes.Equal(got, bytes.ToUpper(v)) {
			t.Errorf("%s differs from an uninterrupted run's output", key)
		}
	}
	for k, lm := range before {
		h, err := s.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("batch-out"), Key: aws.String(k)})
		if err != nil {
			t.Fatal(err)
		}
		if h.LastModified.String() != lm {
			t.Errorf("%s was written again after the restart; its object was checkpointed", k)
		}
	}
}

// The container's answer to GET /execution-parameters fills in what the
// request leaves out, the request wins over it, and without an answer
// the defaults apply. The model answers each request with its length, so
// the output shows how records were batched.
func TestTransformJobExecutionParameters(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.upload(t, "batch-out", "keep", []byte("x"))
	s.createModel(t, "asks-multi", map[string]string{"TESTSERVER_MODE": "length", "TESTSERVER_EXEC_PARAMS": `{"MaxConcurrentTransforms":2,"BatchStrategy":"MULTI_RECORD","MaxPayloadInMB":1}`}, "")
	s.createModel(t, "plain", map[string]string{"TESTSERVER_MODE": "length"}, "")
	s.createModel(t, "env", map[string]string{"TESTSERVER_MODE": "env"}, "")
	s.upload(t, "batch-in", "e/x.txt", []byte("aa\nbbb\nc\n"))
	ctx := context.Background()
	run := func(name, model string, mod func(*sagemaker.CreateTransformJobInput)) string {
		t.Helper()
		if _, err := s.sm.CreateTransformJob(ctx, jobInput(name, model, "e/", func(in *sagemaker.CreateTransformJobInput) {
			in.TransformOutput.AssembleWith = smtypes.AssemblyTypeLine
			if mod != nil {
				mod(in)
			}
		})); err != nil {
			t.Fatal(err)
		}
		if d := s.waitJob(t, name, 30*time.Second); d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
			t.Fatalf("%s: %s %q", name, d.TransformJobStatus, aws.ToString(d.FailureReason))
		}
		out, err := s.getObject(t, "batch-out", name+"/x.txt.out")
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	if got := run("container-says-multi", "asks-multi", nil); got != "9\n" {
		t.Errorf("container's MULTI_RECORD: output %q, want one batch of 9 bytes", got)
	}
	if got := run("request-says-single", "asks-multi", func(in *sagemaker.CreateTransformJobInput) {
		in.BatchStrategy = smtypes.BatchStrategySingleRecord
	}); got != "3\n4\n2\n" {
		t.Errorf("request's SingleRecord: output %q, want one line per record", got)
	}
	if got := run("defaults", "plain", nil); got != "3\n4\n2\n" {
		t.Errorf("no execution parameters: output %q, want SingleRecord", got)
	}
	if got := run("multi-payload", "plain", func(in *sagemaker.CreateTransformJobInput) {
		in.BatchStrategy = smtypes.BatchStrategyMultiRecord
	}); got != "9\n" {
		t.Errorf("MultiRecord: output %q", got)
	}
	// The container gets the batch settings in its environment, with the
	// job's Environment.
	got := run("env", "env", func(in *sagemaker.CreateTransformJobInput) {
		in.TransformInput.SplitType = smtypes.SplitTypeNone
		in.MaxConcurrentTransforms = aws.Int32(3)
		in.Environment = map[string]string{"JOB_SETTING": "on"}
	})
	for _, kv := range []string{`"SAGEMAKER_BATCH":"true"`, `"SAGEMAKER_BATCH_STRATEGY":"SINGLE_RECORD"`, `"SAGEMAKER_MAX_PAYLOAD_IN_MB":"6"`, `"SAGEMAKER_MAX_CONCURRENT_TRANSFORMS":"3"`, `"JOB_SETTING":"on"`} {
		if !strings.Contains(got, kv) {
			t.Errorf("container environment lacks %s: %s", kv, got)
		}
	}
}

// A record larger than MaxPayloadInMB fails the job naming the object and
// the record, and writes no output for it.
func TestTransformJobRecordTooLarge(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.upload(t, "batch-out", "keep", []byte("x"))
	s.createModel(t, "m", nil, "")
	big := append([]byte("small\n"), bytes.Repeat([]byte("y"), 1<<20+10)...)
	s.upload(t, "batch-in", "big/huge.txt", append(big, '\n'))
	ctx := context.Background()
	if _, err := s.sm.CreateTransformJob(ctx, jobInput("toolarge", "m", "big/", func(in *sagemaker.CreateTransformJobInput) {
		in.MaxPayloadInMB = aws.Int32(1)
	})); err != nil {
		t.Fatal(err)
	}
	d := s.waitJob(t, "toolarge", 30*time.Second)
	reason := aws.ToString(d.FailureReason)
	if d.TransformJobStatus != smtypes.TransformJobStatusFailed || !strings.Contains(reason, "s3://batch-in/big/huge.txt") || !strings.Contains(reason, "record 2") {
		t.Fatalf("%s %q", d.TransformJobStatus, reason)
	}
	if keys := s.outputKeys(t, "batch-out", "toolarge/"); len(keys) != 0 {
		t.Fatalf("partial output %v", keys)
	}
}

// A model process that dies mid-request is restarted by the runtime, and
// the mini-batches it held are sent again: the job completes with every
// record once, in order.
func TestTransformJobSurvivesModelCrash(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.upload(t, "batch-out", "keep", []byte("x"))
	marker := filepath.Join(t.TempDir(), "crashed")
	s.createModel(t, "crashy", map[string]string{"TESTSERVER_MODE": "upper", "TESTSERVER_CRASH_ONCE": marker, "TESTSERVER_SLEEP": "5ms"}, "")
	in := lines("crash", 200, 30)
	s.upload(t, "batch-in", "c/x.txt", in)
	ctx := context.Background()
	if _, err := s.sm.CreateTransformJob(ctx, jobInput("crashy", "crashy", "c/", func(in *sagemaker.CreateTransformJobInput) {
		in.MaxConcurrentTransforms = aws.Int32(2)
		in.TransformResources.InstanceCount = aws.Int32(2)
	})); err != nil {
		t.Fatal(err)
	}
	d := s.waitJob(t, "crashy", 60*time.Second)
	if d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
		t.Fatalf("%s %q", d.TransformJobStatus, aws.ToString(d.FailureReason))
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("no model process crashed; the test proves nothing")
	}
	got, err := s.getObject(t, "batch-out", "crashy/x.txt.out")
	if err != nil || !bytes.Equal(got, bytes.ToUpper(in)) {
		t.Fatalf("output after a crash: %d bytes, want %d (%v)", len(got), len(in), err)
	}
}
