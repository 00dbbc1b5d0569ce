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
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/berth-io/berth/internal/testserver/testserverbin"
)

// TestKill9KeepsDesiredState runs the real berth binary: an endpoint
// scaled out by UpdateEndpointWeightsAndCapacities comes back at its new
// size after kill -9, and a blue/green update in flight at the moment of a
// second kill -9 completes after the restart.
func TestKill9KeepsDesiredState(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the berth binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "berth")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build berth: %v\n%s", err, out)
	}
	ts := testserverbin.Build(t)
	cfgFile := filepath.Join(dir, "berth.yaml")
	cfg := fmt.Sprintf("images:\n  test/echo:1:\n    command: [%q]\n  test/upper:1:\n    command: [%q]\n    env: {TESTSERVER_MODE: upper}\n", ts, ts) + sameUser() +
		// The update calls answer at once, not once the endpoint settles,
		// so the test can act while the update runs.
		"endpoints: {settle_wait: 0s}\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "data")
	addr := freeAddr(t)
	sm, rt, _ := sdkClients("http://" + addr)
	ctx := context.Background()

	kill := func(cmd *exec.Cmd) {
		t.Helper()
		models := modelPIDs(t, cmd.Process.Pid)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		cmd.Wait()
		waitUntil(t, 10*time.Second, func() bool {
			for _, pid := range models {
				if syscall.Kill(pid, 0) == nil && !isZombie(pid) {
					return false
				}
			}
			return true
		})
	}
	describe := func() *sagemaker.DescribeEndpointOutput {
		t.Helper()
		d, err := sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("e")})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	berth := startBerth(t, bin, addr, dataDir, cfgFile)
	for _, m := range []struct{ name, image string }{{"echo", "test/echo:1"}, {"upper", "test/upper:1"}} {
		if _, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{
			ModelName:        aws.String(m.name),
			ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/r"),
			PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(m.image)},
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
			EndpointConfigName: aws.String(m.name),
			ProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("AllTraffic"), ModelName: aws.String(m.name), InitialInstanceCount: aws.Int32(2), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("e"), EndpointConfigName: aws.String("echo")}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, sm, "e")
	if _, err := sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName:                aws.String("e"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{VariantName: aws.String("AllTraffic"), DesiredInstanceCount: aws.Int32(3)}},
	}); err != nil {
		t.Fatal(err)
	}
	waitInService(t, sm, "e")
	if n := aws.ToInt32(describe().ProductionVariants[0].CurrentInstanceCount); n != 3 {
		t.Fatalf("after scaling out: %d instances", n)
	}

	// The new count is desired state: it survives kill -9.
	kill(berth)
	berth = startBerth(t, bin, addr, dataDir, cfgFile)
	waitInService(t, sm, "e")
	if v := describe().ProductionVariants[0]; aws.ToInt32(v.CurrentInstanceCount) != 3 || aws.ToInt32(v.DesiredInstanceCount) != 3 {
		t.Fatalf("after restart: %d instances, %d desired; want 3", aws.ToInt32(v.CurrentInstanceCount), aws.ToInt32(v.DesiredInstanceCount))
	}
	if n := len(modelPIDs(t, berth.Process.Pid)); n != 3 {
		t.Fatalf("%d model processes after restart, want 3", n)
	}
	invokeExpect(t, rt, "e", "x")

	// An update whose linear steps each last 2 s: kill berth once the new
	// fleet takes some traffic, while the endpoint is still Updating.
	if _, err := sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{
		EndpointName:       aws.String("e"),
		EndpointConfigName: aws.String("upper"),
		DeploymentConfig: &smtypes.DeploymentConfig{BlueGreenUpdatePolicy: &smtypes.BlueGreenUpdatePolicy{
			TrafficRoutingConfiguration: &smtypes.TrafficRoutingConfig{
				Type:                  smtypes.TrafficRoutingConfigTypeLinear,
				WaitIntervalInSeconds: aws.Int32(2),
				LinearStepSize:        &smtypes.CapacitySize{Type: smtypes.CapacitySizeTypeInstanceCount, Value: aws.Int32(1)},
			},
			TerminationWaitInSeconds: aws.Int32(0),
		}},
	}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, func() bool {
		out, err := rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{EndpointName: aws.String("e"), Body: []byte("x"), ContentType: aws.String("text/plain")})
		return err == nil && string(out.Body) == "X"
	})
	if d := describe(); d.EndpointStatus != smtypes.EndpointStatusUpdating {
		t.Fatalf("status %s when killed, want Updating", d.EndpointStatus)
	}
	kill(berth)

	// After the restart the update resumes and completes.
	berth = startBerth(t, bin, addr, dataDir, cfgFile)
	waitInService(t, sm, "e")
	d := describe()
	if aws.ToString(d.EndpointConfigName) != "upper" || aws.ToString(d.FailureReason) != "" {
		t.Fatalf("after the restart: config %s, reason %q; want the update completed", aws.ToString(d.EndpointConfigName), aws.ToString(d.FailureReason))
	}
	if n := aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount); n != 2 {
		t.Errorf("%d instances after the update, want the new config's 2", n)
	}
	invokeExpect(t, rt, "e", "X")
	waitUntil(t, 10*time.Second, func() bool { return len(modelPIDs(t, berth.Process.Pid)) == 2 })
}
