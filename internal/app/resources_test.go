package app_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
)

// TestFDsFlatOverEndpointLifecycles creates, invokes and deletes endpoints
// many times over: connections to stopped instances must be closed, so
// the descriptors in use stay flat.
func TestFDsFlatOverEndpointLifecycles(t *testing.T) {
	if testing.Short() {
		t.Skip("200 endpoint lifecycles")
	}
	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	s.createModel(t, "fd", nil, "")
	s.createConfig(t, "fd", "fd", 1)

	lifecycle := func(i int) {
		t.Helper()
		name := fmt.Sprintf("fd-%d", i)
		s.createEndpoint(t, name, "fd")
		s.waitInService(t, name)
		if got, err := s.invoke(t, name, "ping"); err != nil || got == "" {
			t.Fatalf("invoke %s: %q %v", name, got, err)
		}
		if _, err := s.sm.DeleteEndpoint(ctx, &sagemaker.DeleteEndpointInput{EndpointName: aws.String(name)}); err != nil {
			t.Fatalf("DeleteEndpoint %s: %v", name, err)
		}
		waitFor(t, 10*time.Second, func() error {
			_, err := s.sm.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String(name)})
			if err == nil {
				return errors.New("still there")
			}
			return nil
		})
	}
	// Warm up: the first lifecycles open what is opened once (the SDK's
	// connections, the database's, the log files' directory).
	for i := range 5 {
		lifecycle(i)
	}
	before := openFDs(t)
	start := time.Now()
	for i := 5; i < 205; i++ {
		lifecycle(i)
	}
	t.Logf("200 lifecycles in %s", time.Since(start))
	const slack = 10
	var after int
	waitFor(t, 5*time.Second, func() error {
		after = openFDs(t)
		if after > before+slack {
			return fmt.Errorf("open fds %d after 200 endpoint lifecycles, %d before", after, before)
		}
		return nil
	})
	t.Logf("open fds: %d before, %d after", before, after)
}
