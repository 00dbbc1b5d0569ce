package app_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/smithy-go"

	"github.com/berth-io/berth/internal/app"
	"github.com/berth-io/berth/internal/config"
	"github.com/berth-io/berth/internal/modelserver/builtin"
	"github.com/berth-io/berth/internal/testserver/testserverbin"
)

// testImage is the local-command image that runs the test model server.
const testImage = "berth-test/echo:1"

// server is a berth server started in-process for one test, with real AWS
// SDK clients pointed at it.
type server struct {
	app     *app.App
	url     string
	dataDir string
	sm      *sagemaker.Client
	rt      *sagemakerruntime.Client
	s3      *s3.Client
}

func testConfig(t testing.TB, dataDir string) config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = dataDir
	cfg.Runtime.HealthInterval = 200 * time.Millisecond
	cfg.Runtime.StopGrace = 5 * time.Second
	cfg.Runtime.StartupTimeout = 20 * time.Second
	// Test binaries and data dirs live in private temp dirs: model
	// processes keep the test's user unless a test says otherwise.
	cfg.Runtime.RunAsUser = fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())
	cfg.Images = map[string]config.Image{
		testImage: {Command: []string{testserverbin.Build(t)}},
	}
	return cfg
}

// startServer starts berth on a free port with cfg and stops it when the
// test ends.
func startServer(t testing.TB, cfg config.Config) *server {
	t.Helper()
	return startServerLogging(t, cfg, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})))
}

// startServerLogging is startServer with berth's log going to logger.
func startServerLogging(t testing.TB, cfg config.Config, logger *slog.Logger) *server {
	t.Helper()
	ctx := context.Background()
	a, err := app.New(ctx, cfg, app.Options{Logger: logger, Frameworks: builtin.Frameworks()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	})
	s := &server{app: a, url: "http://" + a.Addr(), dataDir: cfg.DataDir}
	s.sm, s.rt, s.s3 = clients(s.url)
	return s
}

func clients(url string) (*sagemaker.Client, *sagemakerruntime.Client, *s3.Client) {
	awsCfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		HTTPClient:  &http.Client{Timeout: 2 * time.Minute},
	}
	sm := sagemaker.NewFromConfig(awsCfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(url) })
	rt := sagemakerruntime.NewFromConfig(awsCfg, func(o *sagemakerruntime.Options) { o.BaseEndpoint = aws.String(url) })
	s3c := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(url)
		o.UsePathStyle = true
	})
	return sm, rt, s3c
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// modelTarGz returns a model.tar.gz holding the given files.
func modelTarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

// upload puts an object into the embedded store, creating the bucket.
func (s *server) upload(t *testing.T, bucket, key string, body []byte) {
	t.Helper()
	ctx := context.Background()
	_, err := s.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned interface{ ErrorCode() string }
	if err != nil && !(errors.As(err, &owned) && (owned.ErrorCode() == "BucketAlreadyOwnedByYou" || owned.ErrorCode() == "BucketAlreadyExists")) {
		t.Fatalf("create bucket: %v", err)
	}
	if _, err := s.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatalf("put object: %v", err)
	}
}

// deploy creates a model, a one-variant config and an endpoint named
// name, and waits for InService.
func (s *server) deploy(t testing.TB, name string, env map[string]string, modelURL string, count int32) {
	t.Helper()
	s.createModel(t, name, env, modelURL)
	s.createConfig(t, name, name, count)
	s.createEndpoint(t, name, name)
	s.waitInService(t, name)
}

func (s *server) createModel(t testing.TB, name string, env map[string]string, modelURL string) {
	t.Helper()
	c := &smtypes.ContainerDefinition{Image: aws.String(testImage), Environment: env}
	if modelURL != "" {
		c.ModelDataUrl = aws.String(modelURL)
	}
	_, err := s.sm.CreateModel(context.Background(), &sagemaker.CreateModelInput{
		ModelName:        aws.String(name),
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/berth"),
		PrimaryContainer: c,
	})
	if err != nil {
		t.Fatalf("CreateModel %s: %v", name, err)
	}
}

func (s *server) createConfig(t testing.TB, name, model string, count int32) {
	t.Helper()
	_, err := s.sm.CreateEndpointConfig(context.Background(), &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(name),
		ProductionVariants: []smtypes.ProductionVariant{{
			VariantName:          aws.String("AllTraffic"),
			ModelName:            aws.String(model),
			InitialInstanceCount: aws.Int32(count),
			InstanceType:         smtypes.ProductionVariantInstanceTypeMlM5Large,
		}},
	})
	if err != nil {
		t.Fatalf("CreateEndpointConfig %s: %v", name, err)
	}
}

func (s *server) createEndpoint(t testing.TB, name, cfg string) {
	t.Helper()
	_, err := s.sm.CreateEndpoint(context.Background(), &sagemaker.CreateEndpointInput{
		EndpointName:       aws.String(name),
		EndpointConfigName: aws.String(cfg),
	})
	if err != nil {
		t.Fatalf("CreateEndpoint %s: %v", name, err)
	}
}

// waitInService waits with the SDK's own waiter, as users do.
func (s *server) waitInService(t testing.TB, name string) *sagemaker.DescribeEndpointOutput {
	t.Helper()
	w := sagemaker.NewEndpointInServiceWaiter(s.sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 200*time.Millisecond
	})
	out, err := w.WaitForOutput(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)}, 60*time.Second)
	if err != nil {
		d, derr := s.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
		if derr == nil {
			t.Fatalf("endpoint %s not InService: %v (status %s, reason %q)", name, err, d.EndpointStatus, aws.ToString(d.FailureReason))
		}
		t.Fatalf("endpoint %s not InService: %v", name, err)
	}
	return out
}

func (s *server) invoke(t *testing.T, name, body string) (string, error) {
	t.Helper()
	out, err := s.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String(name),
		ContentType:  aws.String("text/plain"),
		Body:         []byte(body),
	})
	if err != nil {
		return "", err
	}
	return string(out.Body), nil
}

// apiError returns the AWS error code and message of err.
func apiError(err error) (code, msg string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "", fmt.Sprint(err)
}
