package main

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
)

// TestKill9AndRestart runs the real berth binary, kills it with SIGKILL
// while an endpoint serves, and checks that a restart on the same data dir
// brings everything back and that no model process outlived berth.
func TestKill9AndRestart(t *testing.T) {
	bin := buildBerth(t)
	cfgFile := writeConfig(t, echoConfig(t))
	dataDir := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)

	first := startBerth(t, bin, addr, dataDir, cfgFile)
	sm, rt, s3c := sdkClients("http://" + addr)
	ctx := context.Background()

	modelData := putModel(t, s3c, "persisted")
	start := time.Now()
	deployEndpoint(t, sm, "test/echo:1", modelData, 2)
	t.Logf("CreateModel to InService (2 instances): %s", time.Since(start))
	invokeExpect(t, rt, "e", "persisted")

	models := modelPIDs(t, first.Process.Pid)
	if len(models) != 2 {
		t.Fatalf("model processes of berth: %v", models)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	// The parent-death signal takes the model processes down with berth.
	waitExited(t, 10*time.Second, models)

	startBerth(t, bin, addr, dataDir, cfgFile)
	waitInService(t, sm, "e")
	invokeExpect(t, rt, "e", "persisted")
	if out, err := sm.ListModels(ctx, &sagemaker.ListModelsInput{}); err != nil || len(out.Models) != 1 {
		t.Errorf("models after restart: %+v %v", out, err)
	}
	if out, err := sm.ListEndpointConfigs(ctx, &sagemaker.ListEndpointConfigsInput{}); err != nil || len(out.EndpointConfigs) != 1 {
		t.Errorf("configs after restart: %+v %v", out, err)
	}
	d, err := sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("e")})
	if err != nil || aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount) != 2 {
		t.Errorf("endpoint after restart: %+v %v", d, err)
	}
	obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("models"), Key: aws.String("m/model.tar.gz")})
	if err != nil {
		t.Fatalf("object after restart: %v", err)
	}
	obj.Body.Close()
}
