package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/berth-io/berth/internal/testserver/testserverbin"
)

// TestKill9KillsGrandchild runs an image that is a shell running the model
// server as its child, as in ["/bin/sh", "-c", "python3 serve.py"]. The
// kernel's parent-death signal reaches only the shell; the server, berth's
// grandchild, must die with berth all the same when berth is killed with
// SIGKILL, and the endpoint must come back when berth restarts.
func TestKill9KillsGrandchild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the berth binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "berth")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build berth: %v\n%s", err, out)
	}
	cfgFile := filepath.Join(dir, "berth.yaml")
	// "; exit" keeps the shell from exec-ing the server in its place.
	cfg := fmt.Sprintf("images:\n  test/shell:1:\n    command: [/bin/sh, -c, '\"$0\"; exit $?', %q]\n", testserverbin.Build(t)) + sameUser()
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	addr := freeAddr(t)
	first := startBerth(t, bin, addr, dataDir, cfgFile)
	sm, rt, _ := sdkClients("http://" + addr)
	ctx := context.Background()
	if _, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{
		ModelName:        aws.String("m"),
		ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/r"),
		PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String("test/shell:1")},
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
	invokeExpect(t, rt, "e", "x")

	shells := modelPIDs(t, first.Process.Pid)
	if len(shells) != 1 {
		t.Fatalf("model processes of berth: %v", shells)
	}
	servers := modelPIDs(t, shells[0])
	if len(servers) != 1 {
		t.Fatalf("children of the shell %d: %v", shells[0], servers)
	}
	t.Cleanup(func() { syscall.Kill(servers[0], syscall.SIGKILL) })

	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	waitUntil(t, 10*time.Second, func() bool {
		for _, pid := range append(shells, servers...) {
			if syscall.Kill(pid, 0) == nil && !isZombie(pid) {
				return false
			}
		}
		return true
	})

	startBerth(t, bin, addr, dataDir, cfgFile)
	waitInService(t, sm, "e")
	invokeExpect(t, rt, "e", "x")
}

// sameUser is config that keeps model processes on the test's user: the
// test binaries and data dirs live in private temp dirs.
func sameUser() string {
	return fmt.Sprintf("runtime: {run_as_user: \"%d:%d\"}\n", os.Getuid(), os.Getgid())
}
