package app_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"

	"github.com/berth-io/berth/internal/testutil"
)

// dpVariant describes one production variant for deployVariants.
type dpVariant struct {
	name     string
	weight   float32
	count    int32
	env      map[string]string
	strategy smtypes.RoutingStrategy
}

// deployVariants creates one model per variant, a config holding them and
// the endpoint, and waits for InService.
func (s *server) deployVariants(t *testing.T, endpoint string, variants ...dpVariant) {
	t.Helper()
	var pvs []smtypes.ProductionVariant
	for _, v := range variants {
		model := endpoint + "-" + v.name
		s.createModel(t, model, v.env, "")
		pv := smtypes.ProductionVariant{
			VariantName:          aws.String(v.name),
			ModelName:            aws.String(model),
			InitialInstanceCount: aws.Int32(v.count),
			InitialVariantWeight: aws.Float32(v.weight),
			InstanceType:         smtypes.ProductionVariantInstanceTypeMlM5Large,
		}
		if v.strategy != "" {
			pv.RoutingConfig = &smtypes.ProductionVariantRoutingConfig{RoutingStrategy: v.strategy}
		}
		pvs = append(pvs, pv)
	}
	if _, err := s.sm.CreateEndpointConfig(context.Background(), &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String(endpoint), ProductionVariants: pvs,
	}); err != nil {
		t.Fatalf("CreateEndpointConfig: %v", err)
	}
	s.createEndpoint(t, endpoint, endpoint)
	s.waitInService(t, endpoint)
}

func TestDataplaneInvokeEndpointShape(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	ctx := context.Background()
	s.deploy(t, "shape", nil, "", 1)

	out, err := s.rt.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
		EndpointName:     aws.String("shape"),
		Body:             []byte(`{"x":1}`),
		ContentType:      aws.String("application/json"),
		Accept:           aws.String("application/json"),
		CustomAttributes: aws.String("c000b4f9-df62-4c85-a0bf-7c525f9104a4"),
		InferenceId:      aws.String("inference-1"),
		TargetVariant:    aws.String("AllTraffic"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(out.Body) != `{"x":1}` || aws.ToString(out.ContentType) != "application/json" ||
		aws.ToString(out.InvokedProductionVariant) != "AllTraffic" ||
		aws.ToString(out.CustomAttributes) != "c000b4f9-df62-4c85-a0bf-7c525f9104a4" {
		t.Errorf("output = body %q, type %q, variant %q, attributes %q", out.Body, aws.ToString(out.ContentType),
			aws.ToString(out.InvokedProductionVariant), aws.ToString(out.CustomAttributes))
	}

	for _, tc := range []struct {
		name string
		in   sagemakerruntime.InvokeEndpointInput
		want string
	}{
		{"custom attributes too long", sagemakerruntime.InvokeEndpointInput{CustomAttributes: aws.String(strings.Repeat("a", 1025))}, "customAttributes"},
		{"inference id too long", sagemakerruntime.InvokeEndpointInput{InferenceId: aws.String(strings.Repeat("i", 65))}, "inferenceId"},
		{"bad target variant", sagemakerruntime.InvokeEndpointInput{TargetVariant: aws.String("no_underscores")}, "targetVariant"},
		{"unknown variant", sagemakerruntime.InvokeEndpointInput{TargetVariant: aws.String("Other")}, "Other"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in
			in.EndpointName, in.Body = aws.String("shape"), []byte("x")
			_, err := s.rt.InvokeEndpoint(ctx, &in)
			if code, msg := apiError(err); code != "ValidationError" || !strings.Contains(msg, tc.want) {
				t.Errorf("got %s %q, want ValidationError naming %s", code, msg, tc.want)
			}
		})
	}
}

func TestDataplaneTimeoutAndBrokenModels(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Limits.InvocationTimeout = 500 * time.Millisecond
	s := startServer(t, cfg)
	ctx := context.Background()
	s.deploy(t, "hangs", map[string]string{"TESTSERVER_SLEEP": "30s"}, "", 1)
	s.deploy(t, "garbage", map[string]string{"TESTSERVER_MODE": "garbage"}, "", 1)
	s.deploy(t, "breaks", map[string]string{"TESTSERVER_MODE": "stream-break", "TESTSERVER_CHUNKS": "4"}, "", 1)

	start := time.Now()
	_, err := s.invoke(t, "hangs", "x")
	code, msg := apiError(err)
	if code != "ModelError" || !strings.Contains(msg, "timed out") || !strings.Contains(msg, "(0)") {
		t.Errorf("hanging model: %s %q", code, msg)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("timeout after %s", d)
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) && re.HTTPStatusCode() != http.StatusFailedDependency {
		t.Errorf("timeout status %d, want 424", re.HTTPStatusCode())
	}
	for _, ep := range []string{"garbage", "breaks"} {
		_, err := s.invoke(t, ep, "x")
		if code, msg := apiError(err); code != "ModelError" {
			t.Errorf("%s: %s %q, want ModelError", ep, code, msg)
		}
	}
	// The server still serves.
	s.deploy(t, "fine", nil, "", 1)
	if got, err := s.invoke(t, "fine", "ok"); err != nil || got != "ok" {
		t.Errorf("after bad models: %q %v", got, err)
	}
	_ = ctx
}

func TestDataplaneWeightsConverge(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.deployVariants(t, "weights",
		dpVariant{name: "Heavy", weight: 3, count: 1},
		dpVariant{name: "Light", weight: 1, count: 1})
	const n = 2000
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	var left atomic.Int64
	left.Store(n)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for left.Add(-1) >= 0 {
				out, err := s.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
					EndpointName: aws.String("weights"), Body: []byte("x"), ContentType: aws.String("text/plain"),
				})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				counts[aws.ToString(out.InvokedProductionVariant)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	share := float64(counts["Heavy"]) / n
	t.Logf("variant counts over %d requests: %v (Heavy share %.3f, want 0.75)", n, counts, share)
	// 0.75 ± 0.04 is over 4 standard deviations (σ ≈ 0.0097 for n = 2000).
	if share < 0.71 || share > 0.79 || counts["Heavy"]+counts["Light"] != n {
		t.Errorf("counts %v, Heavy share %.3f, want 0.75", counts, share)
	}
}

// TestDataplaneLeastOutstandingBeatsRandom runs one slow and one fast
// instance per variant (the testserver's slow lock makes exactly one of
// them slow) and counts how many answers came from the slow one.
func TestDataplaneLeastOutstandingBeatsRandom(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	dir := t.TempDir()
	const slow = 100 * time.Millisecond
	for _, strategy := range []smtypes.RoutingStrategy{smtypes.RoutingStrategyLeastOutstandingRequests, smtypes.RoutingStrategyRandom} {
		s.deployVariants(t, "lor-"+strings.ToLower(strings.ReplaceAll(string(strategy), "_", "")), dpVariant{
			name: "AllTraffic", weight: 1, count: 2, strategy: strategy,
			env: map[string]string{"TESTSERVER_SLOW_LOCK": filepath.Join(dir, string(strategy)), "TESTSERVER_SLOW_SLEEP": slow.String()},
		})
	}
	share := func(endpoint string) float64 {
		var slowN, total atomic.Int64
		var left atomic.Int64
		left.Store(60)
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					start := time.Now()
					if _, err := s.invoke(t, endpoint, "x"); err != nil {
						t.Error(err)
						return
					}
					total.Add(1)
					if time.Since(start) >= slow {
						slowN.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		return float64(slowN.Load()) / float64(max(total.Load(), 1))
	}
	lor, random := share("lor-leastoutstandingrequests"), share("lor-random")
	t.Logf("share of answers from the slow instance: LEAST_OUTSTANDING_REQUESTS %.2f, RANDOM %.2f", lor, random)
	// Two clients: least-outstanding never queues a second request on the
	// slow instance, so one client at a time waits on it while the other
	// runs through the fast one; random sends it about half.
	if lor > random/2 {
		t.Errorf("least-outstanding share %.2f is not under half of random's %.2f", lor, random)
	}
}

func TestDataplaneInstanceKilledUnderLoad(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.deploy(t, "killme", nil, "", 2)
	pids := instancePIDs(t, s.dataDir)
	if len(pids) != 2 {
		t.Fatalf("instance pids %v", pids)
	}
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const workers = 4
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if got, err := s.invoke(t, "killme", "ping"); err != nil || got != "ping" {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprint(err))
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if ok.Load() < 50 {
			return errors.New("load not running yet")
		}
		return nil
	})
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The runtime restarts the killed instance; requests keep flowing.
	testutil.WaitFor(t, 30*time.Second, func() error {
		now := instancePIDs(t, s.dataDir)
		for _, p := range now {
			if p == pids[0] {
				return fmt.Errorf("pid %d not replaced yet: %v", p, now)
			}
		}
		if len(now) != 2 {
			return fmt.Errorf("pids %v", now)
		}
		return nil
	})
	s.waitInService(t, "killme")
	before := ok.Load()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if ok.Load() < before+100 {
			return errors.New("not enough requests after the restart")
		}
		return nil
	})
	close(stop)
	wg.Wait()
	t.Logf("%d requests succeeded, %d failed (first failure: %v)", ok.Load(), failed.Load(), firstErr.Load())
	// Only requests already on the killed instance may fail, as they
	// would on SageMaker; new ones are retried on the other instance.
	if failed.Load() > workers {
		t.Errorf("%d requests failed, want at most the %d in flight at the kill", failed.Load(), workers)
	}
}

// get fetches url with a plain HTTP client.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return string(b)
}

// metricValue returns the value of the sample line starting with series.
func metricValue(text, series string) string {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			return rest
		}
	}
	return ""
}

func TestDataplaneMetrics(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.deploy(t, "metered", nil, "", 2)
	s.deploy(t, "failing", map[string]string{"TESTSERVER_STATUS": "503"}, "", 1)
	s.deploy(t, "refusing", map[string]string{"TESTSERVER_STATUS": "400"}, "", 1)
	for range 10 {
		if _, err := s.invoke(t, "metered", "x"); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		s.invoke(t, "failing", "x")
		s.invoke(t, "refusing", "x")
	}
	text := get(t, s.url+"/metrics")
	for series, want := range map[string]string{
		`berth_invocations_total{endpoint="metered",variant="AllTraffic"}`:                   "10",
		`berth_invocation_4xx_errors_total{endpoint="metered",variant="AllTraffic"}`:         "0",
		`berth_invocation_5xx_errors_total{endpoint="metered",variant="AllTraffic"}`:         "0",
		`berth_model_latency_microseconds_count{endpoint="metered",variant="AllTraffic"}`:    "10",
		`berth_overhead_latency_microseconds_count{endpoint="metered",variant="AllTraffic"}`: "10",
		`berth_invocations_total{endpoint="failing",variant="AllTraffic"}`:                   "3",
		`berth_invocation_5xx_errors_total{endpoint="failing",variant="AllTraffic"}`:         "3",
		`berth_invocation_4xx_errors_total{endpoint="refusing",variant="AllTraffic"}`:        "3",
		`berth_invocation_model_errors_total{endpoint="refusing",variant="AllTraffic"}`:      "3",
	} {
		if got := metricValue(text, series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
	// Both instances served some of the ten (least outstanding requests
	// breaks ties round-robin), and per-instance counts add up.
	var perInstance, instances int
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, `berth_invocations_per_instance_total{endpoint="metered"`) {
			var n int
			fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &n)
			perInstance += n
			instances++
		}
	}
	if perInstance != 10 || instances != 2 {
		t.Errorf("per-instance series: %d series summing to %d, want 2 summing to 10", instances, perInstance)
	}
	if !strings.Contains(text, "# TYPE berth_model_latency_microseconds histogram") {
		t.Error("ModelLatency is not a histogram")
	}
}

// TestDataplaneLargeBodies sends a body at the limit through, and one
// over it without a Content-Length.
func TestDataplaneLargeBodies(t *testing.T) {
	s := startServer(t, testConfig(t, t.TempDir()))
	s.deploy(t, "big", nil, "", 1)
	body := bytes.Repeat([]byte("z"), 6<<20)
	out, err := s.rt.InvokeEndpoint(context.Background(), &sagemakerruntime.InvokeEndpointInput{
		EndpointName: aws.String("big"), Body: body, ContentType: aws.String("application/octet-stream")})
	if err != nil || !bytes.Equal(out.Body, body) {
		t.Fatalf("6 MiB: %v", err)
	}
	// Chunked, so the limit is found while streaming.
	req, _ := http.NewRequest(http.MethodPost, s.url+"/endpoints/big/invocations", io.MultiReader(bytes.NewReader(body), strings.NewReader("!")))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("X-Amzn-ErrorType") != "ValidationError" {
		t.Errorf("chunked oversized body: %d %s %s", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), b)
	}
}

// TestDataplaneShutdownAbandonsHangingInvocations: Shutdown waits for
// invocations in flight until its own deadline, then abandons them at once:
// one on the fast path and one with a chunked body (net/http on both
// sides), both under contexts nobody cancels.
func TestDataplaneShutdownAbandonsHangingInvocations(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	s := startServer(t, cfg)
	s.deploy(t, "hangs", map[string]string{"TESTSERVER_SLEEP": "30s"}, "", 1)
	done := make(chan error, 2)
	go func() {
		_, err := s.invoke(t, "hangs", "x")
		done <- err
	}()
	go func() {
		// No length: the body goes chunked, through the router's Transport.
		resp, err := http.Post(s.url+"/endpoints/hangs/invocations", "text/csv", io.MultiReader(strings.NewReader("y")))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		done <- err // nil: answered 200
	}()
	time.Sleep(300 * time.Millisecond) // the requests reached the model
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	s.app.Shutdown(ctx)
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("Shutdown took %v with a 300ms grace period", d)
	}
	for range 2 {
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("a hanging invocation succeeded")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a hanging invocation was not abandoned")
		}
	}
}
