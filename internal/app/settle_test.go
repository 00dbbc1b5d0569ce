package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/berth-io/berth/internal/testutil"
)

func (s *server) status(t *testing.T, name string) *sagemaker.DescribeEndpointOutput {
	t.Helper()
	d, err := s.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
	if err != nil {
		t.Fatalf("DescribeEndpoint %s: %v", name, err)
	}
	return d
}

// timed runs fn and returns how long it took.
func timed(fn func()) time.Duration {
	start := time.Now()
	fn()
	return time.Since(start)
}

// An endpoint whose model server starts quickly is InService at the very
// next DescribeEndpoint after CreateEndpoint, UpdateEndpoint and
// UpdateEndpointWeightsAndCapacities, so the SDK's waiter (30 s between
// polls) returns from its first poll. The bound is raised from the default
// 5 s so that a loaded machine cannot make the test flaky.
func TestEndpointCallsAnswerSettled(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Endpoints.SettleWait = 20 * time.Second
	s := startServer(t, cfg)
	ctx := context.Background()
	s.createModel(t, "quick", nil, "")
	s.createConfig(t, "quick", "quick", 1)
	s.createModel(t, "quick-upper", map[string]string{"TESTSERVER_MODE": "upper"}, "")
	s.createConfig(t, "quick-upper", "quick-upper", 1)

	out, err := s.sm.CreateEndpoint(ctx, &sagemaker.CreateEndpointInput{EndpointName: aws.String("quick"), EndpointConfigName: aws.String("quick")})
	if err != nil {
		t.Fatal(err)
	}
	if arn := aws.ToString(out.EndpointArn); arn != "arn:aws:sagemaker:us-east-1:000000000000:endpoint/quick" {
		t.Errorf("EndpointArn = %q", arn)
	}
	if d := s.status(t, "quick"); d.EndpointStatus != smtypes.EndpointStatusInService {
		t.Fatalf("DescribeEndpoint right after CreateEndpoint: %s, want InService", d.EndpointStatus)
	}
	// The SDK's own waiter with its default delays (30 s between polls).
	w := sagemaker.NewEndpointInServiceWaiter(s.sm)
	in := &sagemaker.DescribeEndpointInput{EndpointName: aws.String("quick")}
	if took := timed(func() {
		if err := w.Wait(ctx, in, time.Minute); err != nil {
			t.Fatal(err)
		}
	}); took > 10*time.Second {
		t.Errorf("the SDK waiter took %s", took)
	}

	if _, err := s.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{EndpointName: aws.String("quick"), EndpointConfigName: aws.String("quick-upper")}); err != nil {
		t.Fatal(err)
	}
	d := s.status(t, "quick")
	if d.EndpointStatus != smtypes.EndpointStatusInService || aws.ToString(d.EndpointConfigName) != "quick-upper" {
		t.Fatalf("right after UpdateEndpoint: %s on %s, want InService on quick-upper", d.EndpointStatus, aws.ToString(d.EndpointConfigName))
	}
	if got, err := s.invoke(t, "quick", "hi"); err != nil || got != "HI" {
		t.Errorf("invoke after the update = %q, %v", got, err)
	}

	_, err = s.sm.UpdateEndpointWeightsAndCapacities(ctx, &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName: aws.String("quick"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{
			VariantName: aws.String("AllTraffic"), DesiredInstanceCount: aws.Int32(2),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d = s.status(t, "quick")
	if d.EndpointStatus != smtypes.EndpointStatusInService || len(d.ProductionVariants) != 1 || aws.ToInt32(d.ProductionVariants[0].CurrentInstanceCount) != 2 {
		t.Fatalf("right after UpdateEndpointWeightsAndCapacities: %s %+v", d.EndpointStatus, d.ProductionVariants)
	}

	// A model that fails at once settles as Failed within the wait.
	s.createModel(t, "broken", map[string]string{"TESTSERVER_FAIL_START": "1"}, "")
	s.createConfig(t, "broken", "broken", 1)
	s.createEndpoint(t, "broken", "broken")
	if d := s.status(t, "broken"); d.EndpointStatus != smtypes.EndpointStatusFailed {
		t.Errorf("right after CreateEndpoint of a failing model: %s, want Failed", d.EndpointStatus)
	}
}

// A model server slower than the settle wait: CreateEndpoint answers after
// about the bound, as SageMaker would (Creating); with settle_wait 0 it
// answers at once.
func TestEndpointSettleWaitBound(t *testing.T) {
	for _, tc := range []struct {
		name     string
		wait     time.Duration
		min, max time.Duration
	}{
		{"bounded", time.Second, time.Second, 5 * time.Second},
		{"disabled", 0, 0, 900 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			cfg.Endpoints.SettleWait = tc.wait
			s := startServer(t, cfg)
			s.createModel(t, "slow", map[string]string{"TESTSERVER_PING_DELAY": "1m"}, "")
			s.createConfig(t, "slow", "slow", 1)
			took := timed(func() { s.createEndpoint(t, "slow", "slow") })
			if took < tc.min || took > tc.max {
				t.Errorf("CreateEndpoint took %s, want between %s and %s", took, tc.min, tc.max)
			}
			if d := s.status(t, "slow"); d.EndpointStatus != smtypes.EndpointStatusCreating {
				t.Errorf("status %s, want Creating", d.EndpointStatus)
			}
		})
	}
}

// A CreateEndpoint waiting for its endpoint to settle does not hold up the
// server's shutdown.
func TestEndpointSettleWaitShutdown(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Endpoints.SettleWait = 25 * time.Second
	s := startServer(t, cfg)
	s.createModel(t, "slow", map[string]string{"TESTSERVER_PING_DELAY": "1m"}, "")
	s.createConfig(t, "slow", "slow", 1)
	answered := make(chan time.Time, 1)
	go func() {
		s.sm.CreateEndpoint(context.Background(), &sagemaker.CreateEndpointInput{EndpointName: aws.String("slow"), EndpointConfigName: aws.String("slow")})
		answered <- time.Now()
	}()
	testutil.WaitFor(t, 10*time.Second, func() error {
		_, err := s.sm.DescribeEndpoint(context.Background(), &sagemaker.DescribeEndpointInput{EndpointName: aws.String("slow")})
		return err
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if took := timed(func() { s.app.Shutdown(ctx) }); took > 10*time.Second {
		t.Errorf("Shutdown took %s with a CreateEndpoint waiting", took)
	}
	select {
	case <-answered:
	case <-time.After(5 * time.Second):
		t.Error("CreateEndpoint still waiting after Shutdown")
	}
}
