package app_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/berth-io/berth/internal/batch/records"
)

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// binaryRecords returns n distinct records of varied sizes (some not a
// multiple of 4, one holding RecordIO's magic number) and their framing
// in format f.
func binaryRecords(f string, n int) (recs [][]byte, framed []byte) {
	for i := range n {
		r := []byte(fmt.Sprintf("rec-%04d-%s", i, strings.Repeat("z", i%7)))
		if i == 3 {
			r = append(r, 0x0A, 0x23, 0xD7, 0xCE, 'x') // RecordIO magic, little-endian
		}
		recs = append(recs, r)
		if f == "RecordIO" {
			framed = records.AppendRecordIO(framed, r)
		} else {
			framed = records.AppendTFRecord(framed, r)
		}
	}
	return recs, framed
}

// runJob creates a job and waits for it to end.
func (s *server) runJob(t *testing.T, in *sagemaker.CreateTransformJobInput) *sagemaker.DescribeTransformJobOutput {
	t.Helper()
	if _, err := s.sm.CreateTransformJob(context.Background(), in); err != nil {
		t.Fatalf("CreateTransformJob %s: %v", aws.ToString(in.TransformJobName), err)
	}
	return s.waitJob(t, aws.ToString(in.TransformJobName), 30*time.Second)
}

func (s *server) wantOutput(t *testing.T, job, key string, want []byte) {
	t.Helper()
	got, err := s.getObject(t, "batch-out", job+"/"+key)
	if err != nil {
		t.Fatalf("%s: output %s: %v", job, key, err)
	}
	if !bytes.Equal(got, want) {
		i := firstDiff(got, want)
		t.Fatalf("%s: output %s differs at byte %d (%d bytes, want %d)\ngot  %q\nwant %q", job, key, i, len(got), len(want), got[max(0, i-40):min(len(got), i+40)], want[max(0, i-40):min(len(want), i+40)])
	}
}

// Gzip input objects are decompressed as a stream, split and batched.
func TestTransformJobGzip(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.upload(t, "batch-out", "keep", []byte("x"))
	s.createModel(t, "upper", map[string]string{"TESTSERVER_MODE": "upper"}, "")
	plain := lines("gz", 300, 8000) // ~2.4 MB: several 1 MB payloads
	s.upload(t, "batch-in", "gz/a.txt.gz", gzipped(t, plain))
	s.upload(t, "batch-in", "gz/b.txt.gz", gzipped(t, []byte("x\ny")))
	for _, strategy := range []smtypes.BatchStrategy{smtypes.BatchStrategySingleRecord, smtypes.BatchStrategyMultiRecord} {
		name := "gzip-" + strings.ToLower(string(strategy))
		d := s.runJob(t, jobInput(name, "upper", "gz/", func(in *sagemaker.CreateTransformJobInput) {
			in.TransformInput.CompressionType = smtypes.CompressionTypeGzip
			in.BatchStrategy = strategy
			in.MaxPayloadInMB = aws.Int32(1)
			in.TransformOutput.AssembleWith = smtypes.AssemblyTypeLine
		}))
		if d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
			t.Fatalf("%s: %s %q", name, d.TransformJobStatus, aws.ToString(d.FailureReason))
		}
		s.wantOutput(t, name, "a.txt.gz.out", bytes.ToUpper(plain))
		s.wantOutput(t, name, "b.txt.gz.out", []byte("X\nY\n"))
	}
}

// RecordIO and TFRecord inputs: SingleRecord sends each record bare,
// MultiRecord sends them framed again, so an echo model's output shows
// exactly what was sent.
func TestTransformJobBinaryRecords(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.upload(t, "batch-out", "keep", []byte("x"))
	s.createModel(t, "echo", nil, "")
	s.createModel(t, "length", map[string]string{"TESTSERVER_MODE": "length"}, "")
	for _, f := range []string{"RecordIO", "TFRecord"} {
		recs, framed := binaryRecords(f, 50)
		prefix := strings.ToLower(f) + "/"
		s.upload(t, "batch-in", prefix+"r.bin", framed)
		split := smtypes.SplitType(f)
		job := func(name, model string, strategy smtypes.BatchStrategy, assemble smtypes.AssemblyType) {
			t.Helper()
			d := s.runJob(t, jobInput(name, model, prefix, func(in *sagemaker.CreateTransformJobInput) {
				in.TransformInput.SplitType = split
				in.TransformInput.ContentType = aws.String("application/x-" + strings.ToLower(f))
				in.BatchStrategy = strategy
				in.MaxPayloadInMB = aws.Int32(1)
				in.TransformOutput.AssembleWith = assemble
			}))
			if d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
				t.Fatalf("%s: %s %q", name, d.TransformJobStatus, aws.ToString(d.FailureReason))
			}
		}
		// MultiRecord: every record fits in one payload, re-framed.
		name := strings.ToLower(f) + "-multi"
		job(name, "echo", smtypes.BatchStrategyMultiRecord, smtypes.AssemblyTypeNone)
		s.wantOutput(t, name, "r.bin.out", framed)
		// SingleRecord: each record bare.
		name = strings.ToLower(f) + "-single"
		job(name, "echo", smtypes.BatchStrategySingleRecord, smtypes.AssemblyTypeNone)
		s.wantOutput(t, name, "r.bin.out", bytes.Join(recs, nil))
		name = strings.ToLower(f) + "-length"
		job(name, "length", smtypes.BatchStrategySingleRecord, smtypes.AssemblyTypeLine)
		var want bytes.Buffer
		for _, r := range recs {
			fmt.Fprintf(&want, "%d\n", len(r))
		}
		s.wantOutput(t, name, "r.bin.out", want.Bytes())
	}
}

// Corrupt input fails the job with a reason naming the object and the
// record, and writes nothing for it.
func TestTransformJobCorruptInput(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.upload(t, "batch-out", "keep", []byte("x"))
	s.createModel(t, "echo", nil, "")

	z := gzipped(t, lines("cz", 2000, 40))
	s.upload(t, "batch-in", "cz/bad.gz", z[:len(z)/2])
	d := s.runJob(t, jobInput("corrupt-gzip", "echo", "cz/", func(in *sagemaker.CreateTransformJobInput) {
		in.TransformInput.CompressionType = smtypes.CompressionTypeGzip
	}))
	reason := aws.ToString(d.FailureReason)
	if d.TransformJobStatus != smtypes.TransformJobStatusFailed || !strings.Contains(reason, "s3://batch-in/cz/bad.gz") || !strings.Contains(reason, "gzip") || !strings.Contains(reason, "record ") {
		t.Fatalf("corrupt gzip: %s %q", d.TransformJobStatus, reason)
	}

	t.Logf("gzip: %s", reason)
	_, framed := binaryRecords("TFRecord", 5)
	// Flip a byte of the second record's data (after its 12-byte header).
	first := 8 + 4 + len("rec-0000-") + 4
	framed[first+12+2] ^= 0xFF
	s.upload(t, "batch-in", "tf/bad.tfrecord", framed)
	d = s.runJob(t, jobInput("corrupt-tf", "echo", "tf/", func(in *sagemaker.CreateTransformJobInput) {
		in.TransformInput.SplitType = smtypes.SplitTypeTfrecord
	}))
	reason = aws.ToString(d.FailureReason)
	if d.TransformJobStatus != smtypes.TransformJobStatusFailed || !strings.Contains(reason, "s3://batch-in/tf/bad.tfrecord") || !strings.Contains(reason, "record 2 ") || !strings.Contains(reason, "checksum") {
		t.Fatalf("TFRecord checksum: %s %q", d.TransformJobStatus, reason)
	}
	t.Logf("TFRecord: %s", reason)
	for _, job := range []string{"corrupt-gzip/", "corrupt-tf/"} {
		if keys := s.outputKeys(t, "batch-out", job); len(keys) != 0 {
			t.Fatalf("partial output %v", keys)
		}
	}
}

// DataProcessing on CSV: the id column is filtered out of what the model
// gets, joined back, and the output keeps the id and the prediction.
func TestTransformJobDataProcessingCSV(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.upload(t, "batch-out", "keep", []byte("x"))
	s.createModel(t, "length", map[string]string{"TESTSERVER_MODE": "length"}, "")
	s.createModel(t, "upper", map[string]string{"TESTSERVER_MODE": "upper"}, "")
	// Rows of about 5 kB, so that MultiRecord batches of 1 MB split the
	// object into several, a row held over from one batch to the next.
	pad := strings.Repeat("p", 5000)
	var in, wantLen, wantUpper bytes.Buffer
	for i := range 500 {
		feat := fmt.Sprintf("f%d,%s,%s", i, pad, strings.Repeat("g", i%9))
		fmt.Fprintf(&in, "id%d,%s\n", i, feat)
		fmt.Fprintf(&wantLen, "id%d,%d\n", i, len(feat)+1) // the model gets the line with its newline
		fmt.Fprintf(&wantUpper, "id%d,%s\n", i, strings.ToUpper(strings.Repeat("g", i%9)))
	}
	s.upload(t, "batch-in", "csv/rows.csv", in.Bytes())
	dp := &smtypes.DataProcessing{InputFilter: aws.String("$[1:]"), JoinSource: smtypes.JoinSourceInput, OutputFilter: aws.String("$[0,-1]")}
	for _, c := range []struct {
		name, model string
		strategy    smtypes.BatchStrategy
		want        []byte
	}{
		{"csv-single", "length", smtypes.BatchStrategySingleRecord, wantLen.Bytes()},
		{"csv-multi", "upper", smtypes.BatchStrategyMultiRecord, wantUpper.Bytes()},
	} {
		d := s.runJob(t, jobInput(c.name, c.model, "csv/", func(in *sagemaker.CreateTransformJobInput) {
			in.TransformInput.ContentType = aws.String("text/csv")
			in.BatchStrategy = c.strategy
			in.MaxPayloadInMB = aws.Int32(1)
			in.MaxConcurrentTransforms = aws.Int32(4)
			in.TransformOutput.AssembleWith = smtypes.AssemblyTypeLine
			in.TransformOutput.Accept = aws.String("text/csv")
			in.DataProcessing = dp
		}))
		if d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
			t.Fatalf("%s: %s %q", c.name, d.TransformJobStatus, aws.ToString(d.FailureReason))
		}
		s.wantOutput(t, c.name, "rows.csv.out", c.want)
	}
	// A model that answers fewer lines than it got records fails the
	// object with a reason saying so.
	s.createModel(t, "one", map[string]string{"TESTSERVER_MODE": "length"}, "")
	d := s.runJob(t, jobInput("csv-mismatch", "one", "csv/", func(in *sagemaker.CreateTransformJobInput) {
		in.TransformInput.ContentType = aws.String("text/csv")
		in.BatchStrategy = smtypes.BatchStrategyMultiRecord
		in.TransformOutput.Accept = aws.String("text/csv")
		in.DataProcessing = dp
	}))
	if reason := aws.ToString(d.FailureReason); d.TransformJobStatus != smtypes.TransformJobStatusFailed || !strings.Contains(reason, "s3://batch-in/csv/rows.csv") || !strings.Contains(reason, "1 lines for 500 records") {
		t.Fatalf("line count mismatch: %s %q", d.TransformJobStatus, reason)
	}
}

// DataProcessing on JSON Lines: the join adds SageMakerOutput to each
// object, and an InputFilter selects what the model gets.
func TestTransformJobDataProcessingJSONLines(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.upload(t, "batch-out", "keep", []byte("x"))
	s.createModel(t, "upper", map[string]string{"TESTSERVER_MODE": "upper"}, "")
	var in, wantWhole, wantFiltered bytes.Buffer
	for i := range 200 {
		fmt.Fprintf(&in, `{"id":%d,"x":"v%d"}`+"\n", i, i)
		fmt.Fprintf(&wantWhole, `{"id":%d,"x":"v%d","SageMakerOutput":{"ID":%d,"X":"V%d"}}`+"\n", i, i, i, i)
		fmt.Fprintf(&wantFiltered, `{"id":%d,"x":"v%d","SageMakerOutput":"V%d"}`+"\n", i, i, i)
	}
	s.upload(t, "batch-in", "jl/a.jsonl", in.Bytes())
	for _, c := range []struct {
		name   string
		filter *string
		want   []byte
	}{
		{"jsonl-join", nil, wantWhole.Bytes()},
		{"jsonl-filter", aws.String("$.x"), wantFiltered.Bytes()},
	} {
		d := s.runJob(t, jobInput(c.name, "upper", "jl/", func(in *sagemaker.CreateTransformJobInput) {
			in.TransformInput.ContentType = aws.String("application/jsonlines")
			in.BatchStrategy = smtypes.BatchStrategyMultiRecord
			in.TransformOutput.AssembleWith = smtypes.AssemblyTypeLine
			in.DataProcessing = &smtypes.DataProcessing{InputFilter: c.filter, JoinSource: smtypes.JoinSourceInput}
		}))
		if d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
			t.Fatalf("%s: %s %q", c.name, d.TransformJobStatus, aws.ToString(d.FailureReason))
		}
		s.wantOutput(t, c.name, "a.jsonl.out", c.want)
	}
	// A whole JSON object (SplitType None) that is not a JSON object is
	// joined under SageMakerInput.
	s.createModel(t, "echo", nil, "")
	s.upload(t, "batch-in", "js/a.json", []byte(`[1,2.50,"x"]`))
	d := s.runJob(t, jobInput("json-array", "echo", "js/", func(in *sagemaker.CreateTransformJobInput) {
		in.TransformInput.ContentType = aws.String("application/json")
		in.TransformInput.SplitType = smtypes.SplitTypeNone
		in.DataProcessing = &smtypes.DataProcessing{JoinSource: smtypes.JoinSourceInput}
	}))
	if d.TransformJobStatus != smtypes.TransformJobStatusCompleted {
		t.Fatalf("json-array: %s %q", d.TransformJobStatus, aws.ToString(d.FailureReason))
	}
	s.wantOutput(t, "json-array", "a.json.out", []byte(`{"SageMakerInput":[1,2.50,"x"],"SageMakerOutput":[1,2.50,"x"]}`))
}
