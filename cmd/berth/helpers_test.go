package main

// The tests of this package build the berth binary, run it on a fresh data
// dir and drive it with the AWS SDK for Go v2; these are their shared steps.

import (
	"bytes"
	"context"
	"errors"
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
	"github.com/berth-io/berth/internal/testutil"
)

func TestMain(m *testing.M) { os.Exit(testserverbin.Run(m)) }

// buildBerth builds the berth binary into a temporary directory and
// returns its path. Under -short the test is skipped instead.
func buildBerth(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the berth binary")
	}
	bin := filepath.Join(t.TempDir(), "berth")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build berth: %v\n%s", err, out)
	}
	return bin
}

// writeConfig writes cfg as a config file in a temporary directory and
// returns its path.
func writeConfig(t *testing.T, cfg string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "berth.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// echoConfig is config with the test model server as image test/echo:1,
// answering with the content of its model file, its processes on the
// test's user.
func echoConfig(t *testing.T) string {
	return fmt.Sprintf("images:\n  test/echo:1:\n    command: [%q]\n    env: {TESTSERVER_MODE: model-file}\n", testserverbin.Build(t)) + sameUser()
}

// sameUser is config that keeps model processes on the test's user: the
// test binaries and data dirs live in private temp dirs.
func sameUser() string {
	return fmt.Sprintf("runtime: {run_as_user: \"%d:%d\"}\n", os.Getuid(), os.Getgid())
}

// launch starts cmd, a berth server, collecting its output. When the test
// ends berth is stopped with SIGTERM and, if the test failed, its output
// (the first and last 10,000 bytes when longer) goes to the test log.
func launch(t *testing.T, cmd *exec.Cmd) *testutil.Buffer {
	t.Helper()
	logs := &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			out := logs.String()
			if len(out) > 20000 {
				out = out[:10000] + "\n...\n" + out[len(out)-10000:]
			}
			t.Logf("berth output:\n%s", out)
		}
	})
	return logs
}

// startBerth runs bin serve on addr with dataDir and cfgFile and waits
// until it answers /ping.
func startBerth(t *testing.T, bin, addr, dataDir, cfgFile string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--listen", addr, "--data-dir", dataDir, "--config", cfgFile)
	launch(t, cmd)
	waitPing(t, addr)
	return cmd
}

// waitPing waits until berth at addr answers /ping with 200.
func waitPing(t *testing.T, addr string) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, func() error {
		resp, err := http.Get("http://" + addr + "/ping")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/ping: %s", resp.Status)
		}
		return nil
	})
}

func sdkClients(url string) (*sagemaker.Client, *sagemakerruntime.Client, *s3.Client) {
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "secret", "")}
	return sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(url) }),
		sagemakerruntime.NewFromConfig(cfg, func(o *sagemakerruntime.Options) { o.BaseEndpoint = aws.String(url) }),
		s3.NewFromConfig(cfg, func(o *s3.Options) { o.BaseEndpoint = aws.String(url); o.UsePathStyle = true })
}

// putModel uploads a model archive holding model.txt with content to
// s3://models/m/model.tar.gz and returns that URL.
func putModel(t *testing.T, s3c *s3.Client, content string) string {
	t.Helper()
	ctx := context.Background()
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("models")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("models"), Key: aws.String("m/model.tar.gz"), Body: bytes.NewReader(tarGz(t, "model.txt", content))}); err != nil {
		t.Fatal(err)
	}
	return "s3://models/m/model.tar.gz"
}

// deployEndpoint creates model "m" of image (with modelData unless
// empty), endpoint config "c" with count instances of it, and endpoint
// "e", and waits until "e" is InService.
func deployEndpoint(t *testing.T, sm *sagemaker.Client, image, modelData string, count int32) {
	t.Helper()
	ctx := context.Background()
	container := &smtypes.ContainerDefinition{Image: aws.String(image)}
	if modelData != "" {
		container.ModelDataUrl = aws.String(modelData)
	}
	if _, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String("m"),
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/r"),
		PrimaryContainer: container,
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("c"),
		ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String("m"), InitialInstanceCount: aws.Int32(count), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("e"), EndpointConfigName: aws.String("c")}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, sm, "e")
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

// waitExited waits until none of pids runs (a zombie counts as gone).
func waitExited(t *testing.T, timeout time.Duration, pids []int) {
	t.Helper()
	testutil.WaitFor(t, timeout, func() error {
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil && !isZombie(pid) {
				return fmt.Errorf("process %d still runs", pid)
			}
		}
		return nil
	})
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

// waitUntil waits for cond to hold, failing the test after timeout.
func waitUntil(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, timeout, func() error {
		if cond() {
			return nil
		}
		return errors.New("condition not met")
	})
}
