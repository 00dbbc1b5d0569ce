package app_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/berth-io/berth/internal/testutil"
)

// load invokes an endpoint from a few goroutines until stopped, counting
// answers by body and failures.
type load struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	failures atomic.Int64
	mu       sync.Mutex
	bodies   map[string]int
	firstErr error
}

func startLoad(t *testing.T, s *server, endpoint string, workers int) *load {
	l := &load{stop: make(chan struct{}), bodies: map[string]int{}}
	for range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				got, err := s.invoke(t, endpoint, "hello")
				l.mu.Lock()
				if err != nil {
					l.failures.Add(1)
					if l.firstErr == nil {
						l.firstErr = err
					}
				} else {
					l.bodies[got]++
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

func (l *load) finish() map[string]int {
	close(l.stop)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bodies
}

func (l *load) seen(body string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.bodies[body] > 0
}

func TestBlueGreenCanaryUnderLoad(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	s.deploy(t, "bg", nil, "", 2)
	s.createModel(t, "bg-upper", map[string]string{"TESTSERVER_MODE": "upper"}, "")
	s.createConfig(t, "bg-upper", "bg-upper", 2)

	l := startLoad(t, s, "bg", 4)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if !l.seen("hello") {
			return errors.New("no answers yet")
		}
		return nil
	})
	_, err := s.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{
		EndpointName:       aws.String("bg"),
		EndpointConfigName: aws.String("bg-upper"),
		DeploymentConfig: &smtypes.DeploymentConfig{BlueGreenUpdatePolicy: &smtypes.BlueGreenUpdatePolicy{
			TrafficRoutingConfiguration: &smtypes.TrafficRoutingConfig{
				Type:                  smtypes.TrafficRoutingConfigTypeCanary,
				WaitIntervalInSeconds: aws.Int32(1),
				CanarySize:            &smtypes.CapacitySize{Type: smtypes.CapacitySizeTypeCapacityPercent, Value: aws.Int32(50)},
			},
			TerminationWaitInSeconds: aws.Int32(0),
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// During the canary step both fleets answer.
	testutil.WaitFor(t, 20*time.Second, func() error {
		if !l.seen("HELLO") {
			return errors.New("the new fleet has not answered yet")
		}
		return nil
	})
	d := s.waitInService(t, "bg")
	bodies := l.finish()
	if n := l.failures.Load(); n != 0 {
		t.Fatalf("%d requests failed during the update (first: %v)", n, l.firstErr)
	}
	if aws.ToString(d.EndpointConfigName) != "bg-upper" || d.LastDeploymentConfig == nil {
		t.Errorf("after update: config %s, LastDeploymentConfig %+v", aws.ToString(d.EndpointConfigName), d.LastDeploymentConfig)
	}
	if got, _ := s.invoke(t, "bg", "hello"); got != "HELLO" {
		t.Errorf("after the update = %q", got)
	}
	t.Logf("answers during the update: %v", bodies)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if n := len(instancePIDs(t, s.dataDir)); n != 2 {
			return errors.New("old fleet still running")
		}
		return nil
	})
}

func TestDeploymentConfigValidation(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	s.deploy(t, "dc", nil, "", 1)
	_, err := s.sm.UpdateEndpoint(ctx, &sagemaker.UpdateEndpointInput{
		EndpointName:       aws.String("dc"),
		EndpointConfigName: aws.String("dc"),
		DeploymentConfig: &smtypes.DeploymentConfig{BlueGreenUpdatePolicy: &smtypes.BlueGreenUpdatePolicy{
			TrafficRoutingConfiguration: &smtypes.TrafficRoutingConfig{Type: smtypes.TrafficRoutingConfigTypeLinear, WaitIntervalInSeconds: aws.Int32(1)},
		}},
	})
	if code, msg := apiError(err); code != "ValidationException" || !strings.Contains(msg, "linearStepSize") {
		t.Errorf("LINEAR without a step: %s %s", code, msg)
	}
	d := s.waitInService(t, "dc")
	if d.EndpointStatus != smtypes.EndpointStatusInService {
		t.Errorf("status %s after a refused update", d.EndpointStatus)
	}
}

func TestShadowVariantAndDataCapture(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Capture.FlushInterval = 50 * time.Millisecond
	s := startServer(t, cfg)
	ctx := context.Background()
	s.upload(t, "capture", "keep", []byte("x"))
	s.createModel(t, "prod", nil, "")
	s.createModel(t, "shadow", map[string]string{"TESTSERVER_MODE": "upper"}, "")
	_, err := s.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName:       aws.String("sc"),
		ProductionVariants:       []smtypes.ProductionVariant{{VariantName: aws.String("Prod"), ModelName: aws.String("prod"), InitialInstanceCount: aws.Int32(1)}},
		ShadowProductionVariants: []smtypes.ProductionVariant{{VariantName: aws.String("Shadow"), ModelName: aws.String("shadow"), InitialInstanceCount: aws.Int32(1)}},
		DataCaptureConfig: &smtypes.DataCaptureConfig{
			EnableCapture:             aws.Bool(true),
			InitialSamplingPercentage: aws.Int32(100),
			DestinationS3Uri:          aws.String("s3://capture/datacapture"),
			CaptureOptions:            []smtypes.CaptureOption{{CaptureMode: smtypes.CaptureModeInput}, {CaptureMode: smtypes.CaptureModeOutput}},
			CaptureContentTypeHeader:  &smtypes.CaptureContentTypeHeader{CsvContentTypes: []string{"text/plain"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	s.createEndpoint(t, "sc", "sc")
	d := s.waitInService(t, "sc")
	if len(d.ShadowProductionVariants) != 1 || d.DataCaptureConfig == nil || d.DataCaptureConfig.CaptureStatus != smtypes.CaptureStatusStarted {
		t.Errorf("describe: shadows %+v capture %+v", d.ShadowProductionVariants, d.DataCaptureConfig)
	}
	for i := range 5 {
		got, err := s.invoke(t, "sc", "row-"+string(rune('a'+i)))
		if err != nil || got != "row-"+string(rune('a'+i)) {
			t.Fatalf("invoke = %q, %v (the shadow's answer must never reach the client)", got, err)
		}
	}
	// Every request and response is captured in SageMaker's layout.
	var records []map[string]any
	testutil.WaitFor(t, 10*time.Second, func() error {
		records = nil
		list, err := s.s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("capture"), Prefix: aws.String("datacapture/sc/Prod/")})
		if err != nil {
			return err
		}
		for _, obj := range list.Contents {
			out, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("capture"), Key: obj.Key})
			if err != nil {
				return err
			}
			sc := bufio.NewScanner(out.Body)
			for sc.Scan() {
				var rec map[string]any
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					return err
				}
				records = append(records, rec)
			}
			out.Body.Close()
		}
		if len(records) < 5 {
			return fmt.Errorf("captured %d records", len(records))
		}
		return nil
	})
	rec := records[0]
	data := rec["captureData"].(map[string]any)
	in := data["endpointInput"].(map[string]any)
	out := data["endpointOutput"].(map[string]any)
	if in["encoding"] != "CSV" || !strings.HasPrefix(in["data"].(string), "row-") || in["mode"] != "INPUT" || out["mode"] != "OUTPUT" {
		t.Errorf("capture record: %v", rec)
	}
	meta := rec["eventMetadata"].(map[string]any)
	if meta["eventId"] == "" || meta["inferenceTime"] == "" || rec["eventVersion"] != "0" {
		t.Errorf("capture metadata: %v", rec)
	}
}
