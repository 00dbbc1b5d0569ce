package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/berth-io/berth/internal/testserver/testserverbin"
)

// TestKill9AndRestart runs the real berth binary, kills it with SIGKILL
// while an endpoint serves, and checks that a restart on the same data dir
// brings everything back and that no model process outlived berth.
func TestKill9AndRestart(t *testing.T) {
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
	url := "http://" + addr

	first := startBerth(t, bin, addr, dataDir, cfgFile)
	sm, rt, s3c := sdkClients(url)
	ctx := context.Background()

	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("m/model.tar.gz"), Body: bytes.NewReader(tarGz(t, "model.txt", "persisted"))}); err != nil {
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
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("m"), InitialInstanceCount: aws.Int32(2), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large}},
	}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("e"), EndpointConfigName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, sm, "e")
	t.Logf("CreateEndpoint to InService (2 instances): %s", time.Since(start))
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
	waitUntil(t, 10*time.Second, func() bool {
		for _, pid := range models {
			if syscall.Kill(pid, 0) == nil && !isZombie(pid) {
				return false
			}
		}
		return true
	})

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

func startBerth(t *testing.T, bin, addr, dataDir, cfgFile string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--listen", addr, "--data-dir", dataDir, "--config", cfgFile)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("berth output:\n%s", logs.String())
		}
	})
	waitUntil(t, 20*time.Second, func() bool {
		resp, err := http.Get("http://" + addr + "/ping")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return cmd
}

func sdkClients(url string) (*sagemaker.Client, *sagemakerruntime.Client, *s3.Client) {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")}
	return sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(url) }),
		sagemakerruntime.NewFromConfig(cfg, func(o *sagemakerruntime.Options) { o.BaseEndpoint = aws.String(url) }),
		s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(url); o.UsePathStyle = true })
}

func waitInService(t *testing.T, sm *sagemaker.Client, name string) {
	t.Helper()
	w := sagemaker.NewEndpointInServiceWaiter(sm, func(o *sagemaker.EndpointInServiceWaiterOptions) {
		o.MinDelay, o.MaxDelay = 20*time.Millisecond, 200*time.Millisecond
	})
	if err := w.Wait(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)}, time.Minute); err != nil {
		t.Fatalf("endpoint %s: %v", name, err)
	}
}

func invokeExpect(t *testing.T, rt *sagemakerruntime.Client, name, want string) {
	t.Helper()
	out, err := rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String(name), Body: []byte("x"), ContentType: aws.String("text/plain")})
	if err != nil {
		t.Fatalf("invoke %s: %v", name, err)
	}
	if string(out.Body) != want {
		t.Fatalf("invoke %s = %q, want %q", name, out.Body, want)
	}
}

// modelPIDs lists the children of a process, from /proc, but for the
// process runtime's watchdog.
func modelPIDs(t *testing.T, parent int) []int {
	t.Helper()
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command: state, ppid, ...
		rest := stat[bytes.LastIndexByte(stat, ')')+2:]
		fields := strings.Fields(string(rest))
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if len(fields) > 1 && fields[1] == strconv.Itoa(parent) && !bytes.HasPrefix(cmdline, []byte("berth-process-watchdog\x00")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func isZombie(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	rest := stat[bytes.LastIndexByte(stat, ')')+2:]
	return len(rest) > 0 && rest[0] == 'Z'
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitUntil(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMain(m *testing.M) { os.Exit(testserverbin.Run(m)) }
