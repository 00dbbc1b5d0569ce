package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/berth-io/berth/internal/testserver/testserverbin"
)

// TestSecondBerthOnSameDataDir runs the real binary twice on one data dir
// (two ports): the second must exit with a clear message before it
// touches anything, and the first keeps its model process and its
// multipart upload.
func TestSecondBerthOnSameDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the berth binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "berth")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build berth: %v\n%s", err, out)
	}
	cfgFile := filepath.Join(dir, "berth.yaml")
	cfg := fmt.Sprintf("images:\n  test/echo:1:\n    command: [%q]\n    env: {TESTSERVER_MODE: model-file}\n", testserverbin.Build(t)) + sameUser()
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	addr := freeAddr(t)
	first := startBerth(t, bin, addr, dataDir, cfgFile)
	sm, rt, s3c := sdkClients("http://" + addr)
	ctx := context.Background()

	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("m/model.tar.gz"), Body: bytes.NewReader(tarGz(t, "model.txt", "first"))}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String("m"),
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/r"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("test/echo:1"), ModelDataUrl: aws.String("s3://models/m/model.tar.gz")},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("c"),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("m"), InitialInstanceCount: aws.Int32(1), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("e"), EndpointConfigName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, sm, "e")
	invokeExpect(t, rt, "e", "first")
	models := modelPIDs(t, first.Process.Pid)
	if len(models) != 1 {
		t.Fatalf("model processes of berth: %v", models)
	}
	up, err := s3c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String("models"), Key: aws.String("big")})
	if err != nil {
		t.Fatal(err)
	}
	part, err := s3c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String("models"), Key: aws.String("big"), UploadId: up.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader([]byte("spooled"))})
	if err != nil {
		t.Fatal(err)
	}

	ctx2, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx2, bin, "serve", "--listen", freeAddr(t), "--data-dir", dataDir, "--config", cfgFile).CombinedOutput()
	if err == nil {
		t.Fatalf("second berth on the same data dir exited 0:\n%s", out)
	}
	if ctx2.Err() != nil {
		t.Fatalf("second berth on the same data dir kept running:\n%s", out)
	}
	want := fmt.Sprintf("data dir %s is in use by another berth (pid %d)", dataDir, first.Process.Pid)
	if !strings.Contains(string(out), want) {
		t.Fatalf("second berth said:\n%s\nwant %q", out, want)
	}

	for _, pid := range models {
		if syscall.Kill(pid, 0) != nil || isZombie(pid) {
			t.Fatalf("model process %d of the first berth is gone", pid)
		}
	}
	if now := modelPIDs(t, first.Process.Pid); len(now) != 1 || now[0] != models[0] {
		t.Fatalf("model processes now %v, before %v", now, models)
	}
	invokeExpect(t, rt, "e", "first")
	if _, err := s3c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String("models"), Key: aws.String("big"), UploadId: up.UploadId,
		MultipartUpload: &s3types.CompletedMultipartUpload{Parts: []s3types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}},
	}); err != nil {
		t.Fatalf("complete the upload started before: %v", err)
	}
}
