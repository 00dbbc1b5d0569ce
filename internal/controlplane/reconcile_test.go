package controlplane

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/config"
	"github.com/berth-io/berth/internal/images"
	"github.com/berth-io/berth/internal/router"
	"github.com/berth-io/berth/internal/runtime"
	"github.com/berth-io/berth/internal/runtime/process"
	"github.com/berth-io/berth/internal/store"
	"github.com/berth-io/berth/internal/testserver/testserverbin"
)

func TestMain(m *testing.M) { os.Exit(testserverbin.Run(m)) }

// fakeClock is a Clock that moves only when the test says so.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock on by d and fires the timers that fall due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- c.now
	}
	c.waiters = kept
}

// harness is a Service over the real store, process runtime, image
// catalog and router, with a fake clock.
type harness struct {
	s      *Service
	clock  *fakeClock
	router *router.Router
	dir    string
	opts   Options
}

func newHarness(t *testing.T, dir string, clock *fakeClock) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := process.New(process.Options{
		StateDir:              filepath.Join(dir, "instances"),
		HealthInterval:        50 * time.Millisecond,
		StopGrace:             2 * time.Second,
		DefaultStartupTimeout: 10 * time.Second,
		ReadyPollInterval:     5 * time.Millisecond,
		RunAsUser:             fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()),
	})
	if err != nil {
		t.Fatal(err)
	}
	rtr := router.New(router.Options{AccountID: "000000000000", Timeout: 10 * time.Second})
	h := &harness{clock: clock, router: rtr, dir: dir}
	h.opts = Options{
		Store:          st,
		Images:         images.New(map[string]config.Image{"test/echo": {Command: []string{testserverbin.Build(t)}}}, "", nil),
		Runtime:        rt,
		Router:         rtr,
		Region:         "us-east-1",
		AccountID:      "000000000000",
		StartupTimeout: 10 * time.Second,
		DrainTimeout:   time.Second,
		Clock:          clock,
		RetryBackoff:   time.Second,
		UnhealthyGrace: 10 * time.Second,
		ResyncPeriod:   time.Second,
		DataDir:        dir,
	}
	h.s = New(h.opts)
	t.Cleanup(func() {
		h.s.Close(ctx)
		rt.Close(ctx)
		rtr.Close()
		st.Close()
	})
	return h
}

// model stores a model of the test server with env and a one-variant
// config of it with count instances, both named name.
func (h *harness) model(t *testing.T, name string, env map[string]string, count int32) {
	t.Helper()
	ctx := context.Background()
	err := h.s.CreateModel(ctx, Model{ModelName: name, ExecutionRoleArn: "arn:aws:iam::000000000000:role/r", PrimaryContainer: &ContainerDefinition{Image: "test/echo", Environment: env}})
	if err != nil {
		t.Fatal(err)
	}
	err = h.s.CreateEndpointConfig(ctx, EndpointConfig{EndpointConfigName: name, ProductionVariants: []ProductionVariant{{
		VariantName: "AllTraffic", ModelName: name, InitialInstanceCount: &count, InstanceType: "ml.m5.large",
	}}})
	if err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond for up to 20 s of real time, moving the fake
// clock on by step before each new look.
func (h *harness) eventually(t *testing.T, step time.Duration, cond func(EndpointRecord) error) EndpointRecord {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		er, err := h.s.DescribeEndpoint(context.Background(), "ep")
		if err == nil {
			err = cond(er)
		}
		if err == nil {
			return er
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v (status %s, reason %q, variants %+v)", err, er.Status, er.FailureReason, er.Variants)
		}
		h.clock.Advance(step)
		time.Sleep(10 * time.Millisecond)
	}
}

func inService(er EndpointRecord) error {
	if er.Status != StatusInService {
		return errors.New("not InService")
	}
	return nil
}

// failFile makes the first n starts of a model that names it fail.
func failFile(t *testing.T, dir string, n int) string {
	t.Helper()
	path := filepath.Join(dir, "fail")
	if err := os.WriteFile(path, []byte(fmt.Sprintf("%d\n", n)), 0o666); err != nil {
		t.Fatal(err)
	}
	return path
}

func readFailFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// TestFailedStartIsRetried: a model whose first two starts fail is
// retried after the backoff, on the clock, and the endpoint converges
// instead of failing.
func TestFailedStartIsRetried(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, newFakeClock())
	fail := failFile(t, dir, 2)
	h.model(t, "m", map[string]string{"TESTSERVER_FAIL_FILE": fail}, 1)
	if err := h.s.CreateEndpoint(context.Background(), "ep", "m", nil, nil); err != nil {
		t.Fatal(err)
	}
	// The first start fails at once; the retry waits for the clock.
	h.eventually(t, 0, func(EndpointRecord) error {
		if got := readFailFile(t, fail); got != "1" {
			return fmt.Errorf("fail count %s, want 1", got)
		}
		return nil
	})
	time.Sleep(300 * time.Millisecond)
	er, _ := h.s.DescribeEndpoint(context.Background(), "ep")
	if got := readFailFile(t, fail); got != "1" || er.Status != StatusCreating {
		t.Fatalf("before the backoff passed: fail count %s, status %s; want 1 and Creating", got, er.Status)
	}
	er = h.eventually(t, 500*time.Millisecond, inService)
	if got := readFailFile(t, fail); got != "0" {
		t.Errorf("fail count %s, want 0", got)
	}
	if er.FailureReason != "" || len(er.Instances) != 1 || er.Variants[0].CurrentInstanceCount != 1 {
		t.Errorf("after converging: reason %q, instances %+v, variants %+v", er.FailureReason, er.Instances, er.Variants)
	}
}

// TestStartGivesUp: a model that never starts fails the endpoint after
// StartAttempts rounds, with the model's stderr in FailureReason.
func TestStartGivesUp(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, newFakeClock())
	fail := failFile(t, dir, 100)
	h.model(t, "m", map[string]string{"TESTSERVER_FAIL_FILE": fail}, 1)
	if err := h.s.CreateEndpoint(context.Background(), "ep", "m", nil, nil); err != nil {
		t.Fatal(err)
	}
	er := h.eventually(t, 500*time.Millisecond, func(er EndpointRecord) error {
		if er.Status != StatusFailed {
			return errors.New("not Failed")
		}
		return nil
	})
	if !strings.Contains(er.FailureReason, "boom") {
		t.Errorf("FailureReason %q", er.FailureReason)
	}
	if got := readFailFile(t, fail); got != "97" {
		t.Errorf("fail count %s, want 97 (3 attempts)", got)
	}
}

// held returns the instances the loop held for "ep" at the end of its
// last pass.
func (h *harness) held() heldInstances {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	if le := h.s.live["ep"]; le != nil {
		return le.held
	}
	return heldInstances{}
}

func (h *harness) liveInstances() []runtime.Instance { return h.held().blue }

// TestStoppedInstanceIsReplaced: an instance stopped behind the loop's
// back never gets healthy again; after the grace period the loop starts a
// new one in its place.
func TestStoppedInstanceIsReplaced(t *testing.T) {
	h := newHarness(t, t.TempDir(), newFakeClock())
	h.model(t, "m", nil, 1)
	if err := h.s.CreateEndpoint(context.Background(), "ep", "m", nil, nil); err != nil {
		t.Fatal(err)
	}
	before := h.eventually(t, 0, inService)
	insts := h.liveInstances()
	if len(insts) != 1 || len(before.Instances) != 1 || before.Instances[0].ID != insts[0].ID() {
		t.Fatalf("recorded %+v, running %d", before.Instances, len(insts))
	}
	if err := insts[0].Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Within the grace period nothing is replaced.
	h.clock.Advance(time.Second)
	time.Sleep(100 * time.Millisecond)
	h.clock.Advance(time.Second)
	time.Sleep(100 * time.Millisecond)
	if got := h.liveInstances(); len(got) != 1 || got[0] != insts[0] {
		t.Fatal("replaced within the grace period")
	}
	var got []runtime.Instance
	after := h.eventually(t, time.Second, func(er EndpointRecord) error {
		if len(er.Instances) != 1 || er.Instances[0].ID == before.Instances[0].ID {
			return fmt.Errorf("instances %+v", er.Instances)
		}
		if got = h.liveInstances(); len(got) != 1 || got[0].ID() != er.Instances[0].ID {
			return errors.New("not yet held")
		}
		return inService(er)
	})
	if !got[0].Healthy() || got[0].ID() != after.Instances[0].ID {
		t.Errorf("running after the replacement: %d, recorded %+v", len(got), after.Instances)
	}
}

// TestScaleUpPartialFailureIsRetried: of two new instances one fails to
// start; the endpoint stays InService on what runs, says why, and the
// loop retries until it runs the count asked for.
func TestScaleUpPartialFailureIsRetried(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, newFakeClock())
	fail := filepath.Join(dir, "fail")
	h.model(t, "m", map[string]string{"TESTSERVER_FAIL_FILE": fail}, 1)
	ctx := context.Background()
	if err := h.s.CreateEndpoint(ctx, "ep", "m", nil, nil); err != nil {
		t.Fatal(err)
	}
	h.eventually(t, 0, inService)
	failFile(t, dir, 1)
	three := int32(3)
	if err := h.s.UpdateEndpointWeightsAndCapacities(ctx, "ep", []DesiredWeightAndCapacity{{VariantName: "AllTraffic", DesiredInstanceCount: &three}}); err != nil {
		t.Fatal(err)
	}
	er := h.eventually(t, 0, func(er EndpointRecord) error {
		if er.Status != StatusInService || !strings.HasPrefix(er.FailureReason, retryingReason) {
			return errors.New("no retrying reason yet")
		}
		return nil
	})
	if v := er.Variants[0]; v.CurrentInstanceCount != 2 || v.DesiredInstanceCount != 3 || !strings.Contains(er.FailureReason, "boom") {
		t.Errorf("after the partial failure: %+v, reason %q", v, er.FailureReason)
	}
	er = h.eventually(t, 500*time.Millisecond, func(er EndpointRecord) error {
		if er.Variants[0].CurrentInstanceCount != 3 || er.FailureReason != "" || len(er.Instances) != 3 {
			return errors.New("not converged")
		}
		return inService(er)
	})
	if n := len(h.liveInstances()); n != 3 {
		t.Errorf("%d instances running, want 3", n)
	}
}

func canary(wait int32) *DeploymentConfig {
	return &DeploymentConfig{BlueGreenUpdatePolicy: &BlueGreenUpdatePolicy{
		TrafficRoutingConfiguration: &TrafficRoutingConfig{Type: "CANARY", WaitIntervalInSeconds: &wait, CanarySize: &CapacitySize{Type: "INSTANCE_COUNT", Value: 1}},
	}}
}

func atStep(step int) func(EndpointRecord) error {
	return func(er EndpointRecord) error {
		if er.Status != StatusUpdating || er.Update == nil || er.Update.Step != step {
			return fmt.Errorf("update progress %+v, want step %d", er.Update, step)
		}
		return nil
	}
}

// TestBlueGreenStepsOnTheClock: canary steps last their wait interval on
// the loop's clock, and each step is persisted.
func TestBlueGreenStepsOnTheClock(t *testing.T) {
	h := newHarness(t, t.TempDir(), newFakeClock())
	h.model(t, "blue", nil, 2)
	h.model(t, "green", map[string]string{"TESTSERVER_MODE": "upper"}, 2)
	ctx := context.Background()
	if err := h.s.CreateEndpoint(ctx, "ep", "blue", nil, nil); err != nil {
		t.Fatal(err)
	}
	h.eventually(t, 0, inService)
	if err := h.s.UpdateEndpoint(ctx, "ep", "green", canary(600), false); err != nil {
		t.Fatal(err)
	}
	h.eventually(t, 0, atStep(1))
	h.clock.Advance(599 * time.Second)
	time.Sleep(200 * time.Millisecond)
	h.eventually(t, 0, atStep(1))
	h.eventually(t, time.Second, atStep(2))
	er := h.eventually(t, 10*time.Second, inService)
	if er.EndpointConfigName != "green" || er.Pending != nil || er.Update != nil || len(er.Instances) != 2 {
		t.Errorf("after the update: config %s, pending %v, update %+v, instances %+v", er.EndpointConfigName, er.Pending != nil, er.Update, er.Instances)
	}
}

// TestUpdateResumesAfterRestart: a Service closed in the middle of a
// blue/green update (as a killed berth would be) leaves the update's
// progress in the store; a new Service on the same store brings the old
// fleet back, then the new one, resumes at the persisted step, and
// completes the update.
func TestUpdateResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	clock := newFakeClock()
	h := newHarness(t, dir, clock)
	h.model(t, "blue", nil, 1)
	h.model(t, "green", map[string]string{"TESTSERVER_MODE": "upper"}, 2)
	ctx := context.Background()
	if err := h.s.CreateEndpoint(ctx, "ep", "blue", nil, nil); err != nil {
		t.Fatal(err)
	}
	h.eventually(t, 0, inService)
	if err := h.s.UpdateEndpoint(ctx, "ep", "green", canary(600), false); err != nil {
		t.Fatal(err)
	}
	mid := h.eventually(t, 0, atStep(1))
	h.s.Close(ctx)

	// The second Service reads the same database; the clock has moved on
	// less than the step's wait.
	clock.Advance(100 * time.Second)
	s2 := New(h.opts)
	h.s = s2
	if err := s2.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	h.eventually(t, 0, func(er EndpointRecord) error {
		if err := atStep(1)(er); err != nil {
			return err
		}
		if !er.Update.StepStarted.Equal(mid.Update.StepStarted) {
			return fmt.Errorf("step restarted at %s, want %s", er.Update.StepStarted, mid.Update.StepStarted)
		}
		if len(er.Instances) != 3 {
			return fmt.Errorf("instances %+v, want both fleets", er.Instances)
		}
		return nil
	})
	er := h.eventually(t, 100*time.Second, inService)
	if er.EndpointConfigName != "green" || er.Variants[0].CurrentInstanceCount != 2 {
		t.Errorf("after the resumed update: config %s, variants %+v", er.EndpointConfigName, er.Variants)
	}
}

// TestRestoreBodiesOfThePreviousRelease: endpoint records as the release
// before the reconcile loop wrote them (no Generation, Update or
// Instances; an update in flight known only by its Pending config and the
// endpoint's DeploymentConfig) restore: the serving one comes back
// InService, the updating one completes its update.
func TestRestoreBodiesOfThePreviousRelease(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, dir, newFakeClock())
	ctx := context.Background()
	dep := func(name, mode string, count int) string {
		return fmt.Sprintf(`{"Config":{"EndpointConfigName":%q,"ProductionVariants":[{"VariantName":"AllTraffic","ModelName":%q,"InitialInstanceCount":%d,"InstanceType":"ml.m5.large"}]},`+
			`"Models":{%q:{"ModelName":%q,"ExecutionRoleArn":"arn:aws:iam::000000000000:role/r","PrimaryContainer":{"Image":"test/echo","Environment":{"TESTSERVER_MODE":%q}}}}}`,
			name, name, count, name, name, mode)
	}
	variants := `"Variants":[{"VariantName":"AllTraffic","CurrentWeight":1,"DesiredWeight":1,"CurrentInstanceCount":2,"DesiredInstanceCount":2,"DeployedImages":[{"SpecifiedImage":"test/echo","ResolvedImage":"testserver","ResolutionTime":1700000000.5}]}]`
	bodies := []store.Record{
		{Name: "ep", Status: StatusUpdating, Body: []byte(`{"EndpointName":"ep","EndpointConfigName":"blue",` +
			`"DeploymentConfig":{"BlueGreenUpdatePolicy":{"TrafficRoutingConfiguration":{"Type":"ALL_AT_ONCE","WaitIntervalInSeconds":30},"TerminationWaitInSeconds":0}},` +
			`"Deployed":` + dep("blue", "echo", 2) + `,"Pending":` + dep("green", "upper", 1) + `,` + variants + `}`)},
		{Name: "serving", Status: StatusInService, Body: []byte(`{"EndpointName":"serving","EndpointConfigName":"blue","Deployed":` + dep("blue", "echo", 2) + `,` + variants + `}`)},
	}
	now := time.Now()
	for _, rec := range bodies {
		rec.Kind, rec.Created, rec.Modified = kindEndpoint, now, now
		if err := h.opts.Store.Create(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.s.Restore(ctx); err != nil {
		t.Fatal(err)
	}
	// The old body's DeploymentConfig is the update's policy: it holds
	// the new fleet at full traffic for its 30 s baking period.
	h.eventually(t, 0, atStep(1))
	er := h.eventually(t, 5*time.Second, inService)
	if er.EndpointConfigName != "green" || er.Variants[0].CurrentInstanceCount != 1 || er.Generation != 0 {
		t.Errorf("after the restored update: config %s, variants %+v, generation %d", er.EndpointConfigName, er.Variants, er.Generation)
	}
	serving, err := h.s.DescribeEndpoint(ctx, "serving")
	if err != nil {
		t.Fatal(err)
	}
	waitDeadline := time.Now().Add(20 * time.Second)
	for serving.Status != StatusInService && time.Now().Before(waitDeadline) {
		time.Sleep(20 * time.Millisecond)
		serving, _ = h.s.DescribeEndpoint(ctx, "serving")
	}
	if serving.Status != StatusInService || serving.Variants[0].CurrentInstanceCount != 2 || len(serving.Instances) != 2 {
		t.Errorf("restored serving endpoint: %s %+v %+v", serving.Status, serving.Variants, serving.Instances)
	}
}

// TestUpdateRollsBack: an update whose new fleet never starts, and one
// whose new fleet loses every healthy instance in the middle of its
// canary step, both end InService on the old config with the reason.
func TestUpdateRollsBack(t *testing.T) {
	h := newHarness(t, t.TempDir(), newFakeClock())
	h.model(t, "blue", nil, 1)
	h.model(t, "broken", map[string]string{"TESTSERVER_FAIL_START": "1"}, 1)
	h.model(t, "green", map[string]string{"TESTSERVER_MODE": "upper"}, 1)
	ctx := context.Background()
	if err := h.s.CreateEndpoint(ctx, "ep", "blue", nil, nil); err != nil {
		t.Fatal(err)
	}
	h.eventually(t, 0, inService)
	blue := h.liveInstances()

	rolledBack := func(why string) func(EndpointRecord) error {
		return func(er EndpointRecord) error {
			if er.Status != StatusInService || !strings.Contains(er.FailureReason, "rolled back") {
				return errors.New("not rolled back")
			}
			if er.EndpointConfigName != "blue" || er.Pending != nil || er.Update != nil || len(er.Instances) != 1 || !strings.Contains(er.FailureReason, why) {
				return fmt.Errorf("after the rollback: config %s, update %+v, instances %+v, reason %q", er.EndpointConfigName, er.Update, er.Instances, er.FailureReason)
			}
			return nil
		}
	}
	if err := h.s.UpdateEndpoint(ctx, "ep", "broken", nil, false); err != nil {
		t.Fatal(err)
	}
	h.eventually(t, 500*time.Millisecond, rolledBack("boom"))

	if err := h.s.UpdateEndpoint(ctx, "ep", "green", canary(600), false); err != nil {
		t.Fatal(err)
	}
	h.eventually(t, 0, atStep(1))
	var green []runtime.Instance
	h.eventually(t, 0, func(er EndpointRecord) error {
		if green = h.held().green; len(green) != 1 {
			return errors.New("new fleet not held yet")
		}
		return nil
	})
	for _, in := range green {
		in.Stop(ctx)
	}
	h.eventually(t, time.Second, rolledBack("no healthy instance"))
	if got := h.liveInstances(); len(got) != 1 || got[0] != blue[0] {
		t.Errorf("the old fleet was replaced by the rollback")
	}
}
