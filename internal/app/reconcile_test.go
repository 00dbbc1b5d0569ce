package app_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/berth-io/berth/internal/testutil"
)

// TestFailedStartIsRetried: a model server whose first start fails does
// not fail its endpoint: berth starts it again after a backoff, and the
// endpoint goes InService.
func TestFailedStartIsRetried(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, testConfig(t, dir))
	fail := filepath.Join(dir, "fail-count")
	if err := os.WriteFile(fail, []byte("1\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	s.createModel(t, "flaky", map[string]string{"TESTSERVER_FAIL_FILE": fail}, "")
	s.createConfig(t, "flaky", "flaky", 1)
	s.createEndpoint(t, "flaky", "flaky")
	d := s.waitInService(t, "flaky")
	if got, err := s.invoke(t, "flaky", "hi"); err != nil || got != "hi" {
		t.Errorf("invoke = %q, %v", got, err)
	}
	if r := aws.ToString(d.FailureReason); r != "" {
		t.Errorf("FailureReason %q on a converged endpoint", r)
	}
	if data, _ := os.ReadFile(fail); strings.TrimSpace(string(data)) != "0" {
		t.Errorf("fail count %q: the failing start did not happen", data)
	}
}

// TestScaleUpRetriedUntilConverged: UpdateEndpointWeightsAndCapacities asks
// for two more instances and one fails to start; the endpoint serves on
// what runs, says why, and berth retries until the count is reached.
func TestScaleUpRetriedUntilConverged(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, testConfig(t, dir))
	fail := filepath.Join(dir, "fail-count")
	s.deploy(t, "grow", map[string]string{"TESTSERVER_FAIL_FILE": fail}, "", 1)
	if err := os.WriteFile(fail, []byte("1\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	if _, err := s.sm.UpdateEndpointWeightsAndCapacities(context.Background(), &sagemaker.UpdateEndpointWeightsAndCapacitiesInput{
		EndpointName:                aws.String("grow"),
		DesiredWeightsAndCapacities: []smtypes.DesiredWeightAndCapacity{{VariantName: aws.String("AllTraffic"), DesiredInstanceCount: aws.Int32(3)}},
	}); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 20*time.Second, func() error {
		d := s.status(t, "grow")
		v := d.ProductionVariants[0]
		if d.EndpointStatus != smtypes.EndpointStatusInService || aws.ToInt32(v.CurrentInstanceCount) != 3 || aws.ToString(d.FailureReason) != "" {
			return fmt.Errorf("status %s, %d of %d instances, reason %q", d.EndpointStatus, aws.ToInt32(v.CurrentInstanceCount), aws.ToInt32(v.DesiredInstanceCount), aws.ToString(d.FailureReason))
		}
		return nil
	})
	if n := len(instancePIDs(t, s.dataDir)); n != 3 {
		t.Errorf("%d model processes, want 3", n)
	}
	if data, _ := os.ReadFile(fail); strings.TrimSpace(string(data)) != "0" {
		t.Errorf("fail count %q: the failing start did not happen", data)
	}
	if _, err := s.invoke(t, "grow", "hi"); err != nil {
		t.Error(errors.Join(errors.New("invoke after scaling"), err))
	}
}
