package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/berth-io/berth/internal/testutil"
)

func TestDeployAndInvoke(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	s.upload(t, "models", "echo/model.tar.gz", modelTarGz(t, map[string]string{"model.txt": "weights-v1"}))

	s.createModel(t, "file-model", map[string]string{"TESTSERVER_MODE": "model-file"}, "s3://models/echo/model.tar.gz")
	s.createConfig(t, "file-config", "file-model", 2)
	start := time.Now()
	s.createEndpoint(t, "file-endpoint", "file-config")
	out := s.waitInService(t, "file-endpoint")
	t.Logf("CreateEndpoint to InService: %s", time.Since(start))

	if got := *out.EndpointArn; got != "arn:aws:sagemaker:us-east-1:000000000000:endpoint/file-endpoint" {
		t.Errorf("EndpointArn = %s", got)
	}
	if len(out.ProductionVariants) != 1 || aws.ToInt32(out.ProductionVariants[0].CurrentInstanceCount) != 2 {
		t.Errorf("ProductionVariants = %+v", out.ProductionVariants)
	}
	if out.CreationTime == nil || time.Since(*out.CreationTime) > time.Minute {
		t.Errorf("CreationTime = %v", out.CreationTime)
	}

	// Both instances serve the unpacked model file.
	for range 8 {
		resp, err := s.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
			EndpointName: aws.String("file-endpoint"),
			ContentType:  aws.String("text/plain"),
			Body:         []byte("x"),
		})
		if err != nil {
			t.Fatalf("InvokeEndpoint: %v", err)
		}
		if string(resp.Body) != "weights-v1" {
			t.Fatalf("body = %q", resp.Body)
		}
		if aws.ToString(resp.InvokedProductionVariant) != "AllTraffic" {
			t.Fatalf("InvokedProductionVariant = %v", resp.InvokedProductionVariant)
		}
	}

	// SageMaker lets a model and config be deleted under a running
	// endpoint, which keeps serving.
	if _, err := s.sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("file-model")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.sm.DeleteEndpointConfig(ctx, &sagemaker.DeleteEndpointConfigInput{EndpointConfigName: aws.String("file-config")}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.invoke(t, "file-endpoint", "x"); err != nil || got != "weights-v1" {
		t.Fatalf("invoke after deleting model and config: %q, %v", got, err)
	}
	if _, err := s.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("file-model")}); err == nil {
		t.Fatal("DescribeModel of a deleted model succeeded")
	}

	// Delete: the SDK's waiter sees it go.
	if _, err := s.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("file-endpoint")}); err != nil {
		t.Fatal(err)
	}
	w := sagemaker.NewEndpointDeletedWaiter(s.sm, func(o *sagemaker.EndpointDeletedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 200*time.Millisecond
	})
	if err := w.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("file-endpoint")}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	_, err := s.invoke(t, "file-endpoint", "x")
	if code, msg := apiError(err); code != "ValidationError" || !strings.Contains(msg, "not found") {
		t.Fatalf("invoke deleted endpoint: %s %s", code, msg)
	}
}

func TestModelEnvironmentAndSecrets(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "berth-own-secret")
	s := startServer(t, testConfig(t, t.TempDir()))
	s.deploy(t, "envcheck", map[string]string{"TESTSERVER_MODE": "env", "MY_SETTING": "42"}, "", 1)
	body, err := s.invoke(t, "envcheck", "")
	if err != nil {
		t.Fatal(err)
	}
	var env map[string]string
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("env response %q: %v", body, err)
	}
	if env["MY_SETTING"] != "42" {
		t.Errorf("model Environment not passed: %v", env)
	}
	if env["SAGEMAKER_BIND_TO_PORT"] == "" || env["SAGEMAKER_SAFE_PORT_RANGE"] == "" {
		t.Errorf("SAGEMAKER_* variables missing: %v", env)
	}
	for k, v := range env {
		if strings.Contains(v, "berth-own-secret") || strings.HasPrefix(k, "AWS_") || strings.HasPrefix(k, "BERTH_") {
			t.Errorf("berth's own environment leaked to the model: %s=%s", k, v)
		}
	}
}

func TestEndpointFailures(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()

	// A model server that exits at start: the endpoint fails with its
	// stderr in FailureReason.
	s.createModel(t, "crashy", map[string]string{"TESTSERVER_FAIL_START": "1"}, "")
	s.createConfig(t, "crashy", "crashy", 1)
	s.createEndpoint(t, "crashy", "crashy")
	var reason string
	testutil.WaitFor(t, 30*time.Second, func() error {
		d, err := s.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("crashy")})
		if err != nil {
			return err
		}
		if d.EndpointStatus != smtypes.EndpointStatusFailed {
			return errors.New("status " + string(d.EndpointStatus))
		}
		reason = aws.ToString(d.FailureReason)
		return nil
	})
	if !strings.Contains(reason, "boom: bad model") {
		t.Errorf("FailureReason = %q, want the process's stderr", reason)
	}
	// The SDK waiter reports failure rather than waiting forever.
	w := sagemaker.NewEndpointInServiceWaiter(s.sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 100*time.Millisecond
	})
	if err := w.Wait(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("crashy")}, 10*time.Second); err == nil {
		t.Error("waiter succeeded on a Failed endpoint")
	}
	// A failed endpoint can be deleted.
	if _, err := s.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String("crashy")}); err != nil {
		t.Fatal(err)
	}

	// A model error is ModelError 424 with the original status and body.
	s.deploy(t, "erroring", map[string]string{"TESTSERVER_STATUS": "500"}, "", 1)
	_, err := s.invoke(t, "erroring", "payload")
	if code, msg := apiError(err); code != "ModelError" || !strings.Contains(msg, "(500)") {
		t.Errorf("invoke erroring model: %s %s", code, msg)
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() != http.StatusFailedDependency {
		t.Errorf("status %d, want 424", re.HTTPStatusCode())
	}
}

func TestCrashedInstanceIsRestarted(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.deploy(t, "phoenix", nil, "", 1)
	pid := instancePIDs(t, s.dataDir)
	if len(pid) != 1 {
		t.Fatalf("instance pids: %v", pid)
	}
	if err := syscall.Kill(pid[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, func() error {
		got, err := s.invoke(t, "phoenix", "again")
		if err != nil {
			return err
		}
		if got != "again" {
			return errors.New("unexpected body " + got)
		}
		return nil
	})
	d := s.waitInService(t, "phoenix")
	if n := aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount); n != 1 {
		t.Errorf("CurrentInstanceCount = %d", n)
	}
}

// instancePIDs reads the pid files the process runtime keeps per instance.
func instancePIDs(t *testing.T, dataDir string) []int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dataDir, "instances", "*", "pid"))
	var pids []int
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fields := strings.Fields(string(data))
		if len(fields) == 0 {
			continue
		}
		if pid, err := strconv.Atoi(fields[0]); err == nil && syscall.Kill(pid, 0) == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestUpdateEndpointAndWeights(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	s.deploy(t, "blue", nil, "", 1)
	if got, _ := s.invoke(t, "blue", "hello"); got != "hello" {
		t.Fatalf("echo = %q", got)
	}

	// Update to a config whose model upper-cases.
	s.createModel(t, "green", map[string]string{"TESTSERVER_MODE": "upper"}, "")
	s.createConfig(t, "green", "green", 1)
	if _, err := s.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("blue"), EndpointConfigName: aws.String("green")}); err != nil {
		t.Fatal(err)
	}
	d := s.waitInService(t, "blue")
	if aws.ToString(d.EndpointConfigName) != "green" {
		t.Errorf("EndpointConfigName = %s", aws.ToString(d.EndpointConfigName))
	}
	if got, _ := s.invoke(t, "blue", "hello"); got != "HELLO" {
		t.Fatalf("after update = %q", got)
	}

	// An update to a config that cannot start rolls back: still InService
	// on green, with the reason.
	s.createModel(t, "broken", map[string]string{"TESTSERVER_FAIL_START": "1"}, "")
	s.createConfig(t, "broken", "broken", 1)
	if _, err := s.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("blue"), EndpointConfigName: aws.String("broken")}); err != nil {
		t.Fatal(err)
	}
	d = s.waitInService(t, "blue")
	if aws.ToString(d.EndpointConfigName) != "green" || !strings.Contains(aws.ToString(d.FailureReason), "boom") {
		t.Errorf("after failed update: config %s reason %q", aws.ToString(d.EndpointConfigName), aws.ToString(d.FailureReason))
	}
	if got, _ := s.invoke(t, "blue", "hello"); got != "HELLO" {
		t.Fatalf("after rolled back update = %q", got)
	}

	// Scale out to 3 instances and change the weight.
	if _, err := s.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName: aws.String("blue"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{
			VariantName: aws.String("AllTraffic"), DesiredInstanceCount: aws.Int32(3), DesiredWeight: aws.Float32(2),
		}},
	}); err != nil {
		t.Fatal(err)
	}
	d = s.waitInService(t, "blue")
	v := d.ProductionVariants[0]
	if aws.ToInt32(v.CurrentInstanceCount) != 3 || aws.ToFloat32(v.CurrentWeight) != 2 {
		t.Errorf("after scaling: %d instances, weight %g", aws.ToInt32(v.CurrentInstanceCount), aws.ToFloat32(v.CurrentWeight))
	}
	if n := len(instancePIDs(t, s.dataDir)); n != 3 {
		t.Errorf("%d model processes running, want 3", n)
	}
	// An unknown variant is refused.
	_, err := s.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName:                aws.String("blue"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{VariantName: aws.String("Nope"), DesiredWeight: aws.Float32(1)}},
	})
	if code, msg := apiError(err); code != "ValidationException" || !strings.Contains(msg, "Nope") {
		t.Errorf("unknown variant: %s %s", code, msg)
	}
}

func TestTags(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	_, err := s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName: aws.String("tagged"), ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/r"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(testImage)},
		Tags:             []smtypes.Tag{{Key: aws.String("team"), Value: aws.String("a")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	arn := "arn:aws:sagemaker:us-east-1:000000000000:model/tagged"
	if _, err := s.sm.AddTags(ctx, &sagemaker.AddTagsInput{ResourceArn: aws.String(arn), Tags: []smtypes.Tag{
		{Key: aws.String("team"), Value: aws.String("b")}, {Key: aws.String("env"), Value: aws.String("ci")},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.sm.DeleteTags(ctx, &sagemaker.DeleteTagsInput{ResourceArn: aws.String(arn), TagKeys: []string{"env"}}); err != nil {
		t.Fatal(err)
	}
	out, err := s.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Tags) != 1 || aws.ToString(out.Tags[0].Key) != "team" || aws.ToString(out.Tags[0].Value) != "b" {
		t.Errorf("tags = %+v", out.Tags)
	}
	_, err = s.sm.ListTags(ctx, &sagemaker.ListTagsInput{ResourceArn: aws.String("arn:aws:sagemaker:us-east-1:000000000000:model/ghost")})
	if code, _ := apiError(err); code != "ValidationException" {
		t.Errorf("tags of a missing model: %v", err)
	}
	// The model itself is unchanged by tagging.
	d, err := s.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String("tagged")})
	if err != nil || aws.ToString(d.PrimaryContainer.Image) != testImage {
		t.Errorf("describe after tagging: %+v %v", d, err)
	}
}

func TestHealthCheckTimeout(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Runtime.StartupTimeout = 300 * time.Millisecond
	s := startServer(t, cfg)
	s.createModel(t, "sleepy", map[string]string{"TESTSERVER_PING_DELAY": "1m"}, "")
	s.createConfig(t, "sleepy", "sleepy", 1)
	s.createEndpoint(t, "sleepy", "sleepy")
	testutil.WaitFor(t, 30*time.Second, func() error {
		d, err := s.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String("sleepy")})
		if err != nil {
			return err
		}
		if d.EndpointStatus != smtypes.EndpointStatusFailed {
			return errors.New("status " + string(d.EndpointStatus))
		}
		if r := aws.ToString(d.FailureReason); !strings.Contains(r, "health check") {
			t.Errorf("FailureReason = %q, want it to name the health check", r)
		}
		return nil
	})
	if n := len(instancePIDs(t, s.dataDir)); n != 0 {
		t.Errorf("%d model processes left running after a failed start", n)
	}
}

func TestModelDataSourcePrefix(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	s.upload(t, "models", "llm/config.json", []byte(`{"layers":2}`))
	s.upload(t, "models", "llm/weights/part-1.bin", []byte("w1"))
	_, err := s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String("prefix"),
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/r"),
		PrimaryContainer: &smtypes.ContainerDefinition{
			Image:       aws.String(testImage),
			Environment: map[string]string{"TESTSERVER_MODE": "model-file", "TESTSERVER_MODEL_FILE": "weights/part-1.bin"},
			ModelDataSource: &smtypes.ModelDataSource{S3DataSource: &smtypes.S3ModelDataSource{
				S3Uri:           aws.String("s3://models/llm/"),
				S3DataType:      smtypes.S3ModelDataTypeS3Prefix,
				CompressionType: smtypes.ModelCompressionTypeNone,
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.createConfig(t, "prefix", "prefix", 1)
	s.createEndpoint(t, "prefix", "prefix")
	s.waitInService(t, "prefix")
	if got, err := s.invoke(t, "prefix", "x"); err != nil || got != "w1" {
		t.Fatalf("invoke = %q, %v", got, err)
	}
	// A prefix with nothing under it is refused at CreateModel.
	_, err = s.sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String("empty-prefix"),
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/r"),
		PrimaryContainer: &smtypes.ContainerDefinition{
			Image: aws.String(testImage),
			ModelDataSource: &smtypes.ModelDataSource{S3DataSource: &smtypes.S3ModelDataSource{
				S3Uri: aws.String("s3://models/nothing/"), S3DataType: smtypes.S3ModelDataTypeS3Prefix, CompressionType: smtypes.ModelCompressionTypeNone,
			}},
		},
	})
	if code, msg := apiError(err); code != "ValidationException" || !strings.Contains(msg, "s3://models/nothing/") {
		t.Errorf("empty prefix: %s %s", code, msg)
	}
}

func TestInvokeEndpointNotInService(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.createModel(t, "slow", map[string]string{"TESTSERVER_PING_DELAY": "1m"}, "")
	s.createConfig(t, "slow", "slow", 1)
	s.createEndpoint(t, "slow", "slow")
	_, err := s.invoke(t, "slow", "x")
	if code, msg := apiError(err); code != "ValidationError" || !strings.Contains(msg, "Creating") {
		t.Errorf("invoke a Creating endpoint: %s %s", code, msg)
	}
}
