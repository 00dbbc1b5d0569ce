package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/berth-io/berth/internal/capture"
	"github.com/berth-io/berth/internal/fault"
	"github.com/berth-io/berth/internal/objstore"
	"github.com/berth-io/berth/internal/router"
	"github.com/berth-io/berth/internal/runtime"
	"github.com/berth-io/berth/internal/store"
)

// EndpointRecord is a stored endpoint with its status and times.
type EndpointRecord struct {
	Endpoint
	Status   string
	Created  time.Time
	Modified time.Time
}

// liveEndpoint is the running side of an endpoint: its instances per
// variant, its data capture writer, and the background transition
// (deploy, update, scale) in flight.
type liveEndpoint struct {
	name     string
	variants []*liveVariant
	capture  Capturer

	cancel context.CancelFunc // cancels the transition in flight
	done   chan struct{}      // closed when it ends
}

type liveVariant struct {
	spec      ProductionVariant
	shadow    bool
	image     runtime.Image
	model     runtime.ModelSource
	env       map[string]string
	weight    float32
	instances []runtime.Instance
}

func (le *liveEndpoint) stopAll(ctx context.Context) {
	for _, v := range le.variants {
		stopInstances(ctx, v.instances)
	}
	le.variants = nil
	if le.capture != nil {
		le.capture.Close()
		le.capture = nil
	}
}

func stopInstances(ctx context.Context, insts []runtime.Instance) {
	var wg sync.WaitGroup
	for _, in := range insts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in.Stop(ctx)
		}()
	}
	wg.Wait()
}

func allInstances(vs []*liveVariant) []runtime.Instance {
	var out []runtime.Instance
	for _, v := range vs {
		out = append(out, v.instances...)
	}
	return out
}

func routerInstances(insts []runtime.Instance) []router.Instance {
	out := make([]router.Instance, len(insts))
	for i, in := range insts {
		out[i] = in
	}
	return out
}

func (le *liveEndpoint) table() *router.Endpoint {
	return mixedTable(le.name, nil, le.variants, 1, le.capture)
}

// mixedTable routes a share newShare of the traffic to the variants of
// newFleet and the rest to oldFleet, each fleet keeping its own relative
// weights. It is how blue/green updates shift traffic step by step.
func mixedTable(name string, oldFleet, newFleet []*liveVariant, newShare float64, capture Capturer) *router.Endpoint {
	ep := &router.Endpoint{Name: name}
	if capture != nil {
		ep.Capture = capture
	}
	add := func(fleet []*liveVariant, share float64) {
		if share <= 0 {
			return
		}
		var total float64
		for _, v := range fleet {
			if !v.shadow {
				total += float64(v.weight)
			}
		}
		for _, v := range fleet {
			rv := &router.Variant{Name: v.spec.VariantName, Instances: routerInstances(v.instances), Strategy: strategyOf(v.spec)}
			if v.shadow {
				rv.Weight = float64(v.weight)
				ep.Shadows = append(ep.Shadows, rv)
				continue
			}
			rv.Weight = float64(v.weight)
			if total > 0 && share < 1 {
				rv.Weight = float64(v.weight) / total * share
			}
			ep.Variants = append(ep.Variants, rv)
		}
	}
	add(oldFleet, 1-newShare)
	add(newFleet, newShare)
	return ep
}

func strategyOf(pv ProductionVariant) router.Strategy {
	if pv.RoutingConfig != nil && pv.RoutingConfig.RoutingStrategy == "RANDOM" {
		return router.Random
	}
	return router.LeastOutstanding
}

// CreateEndpoint records the endpoint as Creating and deploys it in the
// background; DescribeEndpoint shows InService or Failed when that ends.
func (s *Service) CreateEndpoint(ctx context.Context, name, configName string, tags []Tag, deploymentConfig *DeploymentConfig) error {
	var v validator
	v.name("endpointName", name)
	v.name("endpointConfigName", configName)
	validateDeploymentConfig(&v, deploymentConfig)
	v.tags("tags", tags)
	if err := v.err(); err != nil {
		return err
	}
	if _, err := s.getEndpoint(ctx, name); err == nil {
		return fault.New(fault.Exists, "Cannot create already existing endpoint %q.", s.ARN("endpoint", name))
	}
	dep, err := s.snapshot(ctx, configName)
	if err != nil {
		return err
	}
	if err := s.checkCapacity(ctx, name, dep); err != nil {
		return err
	}
	ep := Endpoint{
		EndpointName:       name,
		EndpointConfigName: dep.Config.EndpointConfigName,
		Tags:               tags,
		DeploymentConfig:   deploymentConfig,
		Deployed:           dep,
		Variants:           desiredVariants(dep),
	}
	if err := s.create(ctx, kindEndpoint, name, StatusCreating, ep, "endpoint"); err != nil {
		return err
	}
	s.startTransition(name, func(ctx context.Context, le *liveEndpoint) { s.deploy(ctx, le, dep, StatusCreating) })
	s.awaitSettled(ctx, name)
	return nil
}

// snapshot freezes an endpoint config with the models it names.
func (s *Service) snapshot(ctx context.Context, configName string) (*Deployment, error) {
	cfg, err := s.getEndpointConfig(ctx, configName)
	if err != nil {
		return nil, err
	}
	dep := &Deployment{Config: cfg.EndpointConfig, Models: map[string]Model{}}
	for _, pv := range append(cfg.ProductionVariants, cfg.ShadowProductionVariants...) {
		m, err := s.getModel(ctx, pv.ModelName)
		if err != nil {
			return nil, err
		}
		dep.Models[pv.ModelName] = m.Model
	}
	return dep, nil
}

func desiredVariants(dep *Deployment) []VariantState {
	var out []VariantState
	n := len(dep.Config.ProductionVariants)
	for i, pv := range append(dep.Config.ProductionVariants, dep.Config.ShadowProductionVariants...) {
		out = append(out, VariantState{
			VariantName:          pv.VariantName,
			Shadow:               i >= n,
			DesiredWeight:        weightOf(pv),
			DesiredInstanceCount: countOf(pv),
		})
	}
	return out
}

func weightOf(pv ProductionVariant) float32 {
	if pv.InitialVariantWeight == nil {
		return 1
	}
	return *pv.InitialVariantWeight
}

func countOf(pv ProductionVariant) int32 {
	if pv.InitialInstanceCount == nil {
		return 1
	}
	return *pv.InitialInstanceCount
}

// checkCapacity refuses a deployment that would pass MaxInstances.
func (s *Service) checkCapacity(ctx context.Context, replacing string, dep *Deployment) error {
	if s.opts.MaxInstances <= 0 {
		return nil
	}
	want := 0
	for _, pv := range append(dep.Config.ProductionVariants, dep.Config.ShadowProductionVariants...) {
		want += int(countOf(pv))
	}
	used := 0
	recs, err := s.opts.Store.List(ctx, kindEndpoint)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if strings.EqualFold(rec.Name, replacing) || rec.Status == StatusFailed {
			continue
		}
		var ep Endpoint
		if json.Unmarshal(rec.Body, &ep) == nil {
			for _, vs := range ep.Variants {
				used += int(max(vs.DesiredInstanceCount, vs.CurrentInstanceCount))
			}
		}
	}
	if used+want > s.opts.MaxInstances {
		return fault.New(fault.LimitExceeded, "The account-level service limit 'total instances across all endpoints' is %d Instances, with current utilization of %d Instances and a request delta of %d Instances. Raise limits.max_instances in the berth config file to allow more.", s.opts.MaxInstances, used, want)
	}
	return nil
}

// startTransition runs fn in the background as the endpoint's only
// transition. Any earlier transition has finished (callers check status).
func (s *Service) startTransition(name string, fn func(ctx context.Context, le *liveEndpoint)) {
	key := strings.ToLower(name)
	s.mu.Lock()
	le := s.live[key]
	if le == nil {
		le = &liveEndpoint{name: name}
		s.live[key] = le
	}
	prevDone := le.done
	ctx, cancel := context.WithCancel(s.bgCtx)
	done := make(chan struct{})
	le.cancel, le.done = cancel, done
	s.mu.Unlock()

	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		defer close(done)
		defer cancel()
		if prevDone != nil {
			<-prevDone
		}
		fn(ctx, le)
	}()
}

// deploy starts every variant of dep for a new (or restored) endpoint.
func (s *Service) deploy(ctx context.Context, le *liveEndpoint, dep *Deployment, from string) {
	start := time.Now()
	variants, err := s.startVariants(ctx, le.name, dep)
	if err != nil {
		if ctx.Err() != nil {
			return // being deleted or shut down
		}
		s.log.Warn("endpoint failed", "endpoint", le.name, "err", err)
		s.setStatus(le.name, StatusFailed, func(ep *Endpoint) { ep.FailureReason = s.failureReason("", err) })
		return
	}
	le.variants = variants
	le.capture = s.newCapturer(le.name, dep)
	s.opts.Router.Publish(le.table())
	s.log.Info("endpoint in service", "endpoint", le.name, "from", from, "took", time.Since(start))
	s.setStatus(le.name, StatusInService, func(ep *Endpoint) {
		ep.FailureReason = ""
		ep.Variants = currentVariants(variants)
	})
}

func currentVariants(vs []*liveVariant) []VariantState {
	var out []VariantState
	for _, v := range vs {
		n := int32(len(v.instances))
		out = append(out, VariantState{
			VariantName:          v.spec.VariantName,
			Shadow:               v.shadow,
			CurrentWeight:        v.weight,
			DesiredWeight:        v.weight,
			CurrentInstanceCount: n,
			DesiredInstanceCount: n,
			DeployedImages: []DeployedImage{{
				SpecifiedImage: v.image.Name,
				ResolvedImage:  strings.Join(v.image.Command, " "),
				ResolutionTime: float64(time.Now().UnixMilli()) / 1000,
			}},
		})
	}
	return out
}

// startVariants starts all variants of dep; on any failure it stops what
// it started and returns the reason.
func (s *Service) startVariants(ctx context.Context, endpoint string, dep *Deployment) ([]*liveVariant, error) {
	var out []*liveVariant
	shadows := len(dep.Config.ProductionVariants)
	for i, pv := range append(dep.Config.ProductionVariants, dep.Config.ShadowProductionVariants...) {
		lv, err := s.prepareVariant(ctx, pv, dep.Models[pv.ModelName])
		if lv != nil {
			lv.shadow = i >= shadows
		}
		if err == nil {
			lv.instances, err = s.startInstances(ctx, endpoint, lv, int(countOf(pv)))
		}
		if err != nil {
			for _, v := range out {
				stopInstances(context.Background(), v.instances)
			}
			return nil, fmt.Errorf("variant %s: %w", pv.VariantName, err)
		}
		out = append(out, lv)
	}
	return out, nil
}

func (s *Service) prepareVariant(ctx context.Context, pv ProductionVariant, m Model) (*liveVariant, error) {
	c := m.PrimaryContainer
	if c == nil {
		return nil, fmt.Errorf("model %s has no primary container", m.ModelName)
	}
	img, err := s.opts.Images.Resolve(c.Image)
	if err != nil {
		return nil, errors.New(fault.Message(err))
	}
	lv := &liveVariant{spec: pv, image: img, env: c.Environment, weight: weightOf(pv)}
	if src, ok := sourceOf(c); ok {
		fetchCtx := ctx
		if t := pv.ModelDataDownloadTimeoutInSeconds; t != nil {
			var cancel context.CancelFunc
			fetchCtx, cancel = context.WithTimeout(ctx, time.Duration(*t)*time.Second)
			defer cancel()
		}
		dir, err := s.opts.Artifacts.Fetch(fetchCtx, src)
		if err != nil {
			return nil, fmt.Errorf("could not fetch model data %s: %w", src.URL, err)
		}
		lv.model = runtime.ModelSource{LocalDir: dir, URI: src.URL}
	}
	return lv, nil
}

// startInstances starts n instances of a variant in parallel.
func (s *Service) startInstances(ctx context.Context, endpoint string, lv *liveVariant, n int) ([]runtime.Instance, error) {
	timeout := s.opts.StartupTimeout
	if t := lv.spec.ContainerStartupHealthCheckTimeoutInSeconds; t != nil {
		timeout = time.Duration(*t) * time.Second
	}
	insts := make([]runtime.Instance, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("%s/%s/%s", endpoint, lv.spec.VariantName, shortID())
			insts[i], errs[i] = s.opts.Runtime.Start(ctx, instanceSpec(id, lv, timeout))
		}()
	}
	wg.Wait()
	var started []runtime.Instance
	for _, in := range insts {
		if in != nil {
			started = append(started, in)
		}
	}
	if err := errors.Join(errs...); err != nil {
		stopInstances(context.Background(), started)
		return nil, firstErr(errs)
	}
	return started, nil
}

// instanceSpec is what the runtime runs for one instance of lv: today one
// container, the model's primary container.
func instanceSpec(id string, lv *liveVariant, timeout time.Duration) runtime.InstanceSpec {
	return runtime.InstanceSpec{
		ID: id,
		Containers: []runtime.ContainerSpec{{
			Name:  runtime.PrimaryContainer,
			Image: lv.image,
			Env:   lv.env,
			Model: lv.model,
		}},
		StartupTimeout: timeout,
	}
}

func firstErr(errs []error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func shortID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// failureReason is prefix and err as a FailureReason: with the data dir
// written as "<data-dir>" (errors of the artifact cache and the runtime,
// and model servers' stderr lines, name files under it) and cut to
// SageMaker's 1024 characters.
func (s *Service) failureReason(prefix string, err error) string {
	msg := prefix + err.Error()
	if s.hide != nil {
		msg = s.hide.Replace(msg)
	}
	return truncate(msg, 1024)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}

// changeEndpoint reads, changes and writes back an endpoint in one
// transaction. change gets the current status and returns the new one.
func (s *Service) changeEndpoint(ctx context.Context, name string, change func(status string, ep *Endpoint) (string, error)) error {
	_, err := s.opts.Store.Update(ctx, kindEndpoint, name, func(rec *store.Record) error {
		var ep Endpoint
		if err := json.Unmarshal(rec.Body, &ep); err != nil {
			return fmt.Errorf("decode endpoint %q: %w", name, err)
		}
		status, err := change(rec.Status, &ep)
		if err != nil {
			return err
		}
		data, err := json.Marshal(ep)
		if err != nil {
			return err
		}
		rec.Body, rec.Status, rec.Modified = data, status, s.opts.Now()
		return nil
	})
	if err == nil {
		s.settle.notify()
	}
	return err
}

// setStatus persists a status change made by a background transition,
// unless the endpoint is being deleted meanwhile.
func (s *Service) setStatus(name, status string, change func(*Endpoint)) {
	err := s.changeEndpoint(context.Background(), name, func(cur string, ep *Endpoint) (string, error) {
		if cur == StatusDeleting && status != StatusDeleting {
			return "", errDeleting
		}
		if change != nil {
			change(ep)
		}
		return status, nil
	})
	if err != nil && !errors.Is(err, errDeleting) && !errors.Is(err, store.ErrNotFound) {
		s.log.Error("persist endpoint status", "endpoint", name, "status", status, "err", err)
	}
}

var errDeleting = errors.New("endpoint is being deleted")

// DescribeEndpoint returns an endpoint.
func (s *Service) DescribeEndpoint(ctx context.Context, name string) (EndpointRecord, error) {
	if err := nameArg("endpointName", name); err != nil {
		return EndpointRecord{}, err
	}
	return s.getEndpoint(ctx, name)
}

// EndpointStatus returns the status of an endpoint, if it exists.
func (s *Service) EndpointStatus(ctx context.Context, name string) (string, bool) {
	rec, err := s.opts.Store.Get(ctx, kindEndpoint, name)
	if err != nil {
		return "", false
	}
	return rec.Status, true
}

func (s *Service) getEndpoint(ctx context.Context, name string) (EndpointRecord, error) {
	rec, err := s.opts.Store.Get(ctx, kindEndpoint, name)
	if errors.Is(err, store.ErrNotFound) {
		return EndpointRecord{}, fault.New(fault.NotFound, "Could not find endpoint %q.", s.ARN("endpoint", name))
	}
	if err != nil {
		return EndpointRecord{}, err
	}
	return decodeEndpoint(rec)
}

func decodeEndpoint(rec store.Record) (EndpointRecord, error) {
	var ep Endpoint
	if err := json.Unmarshal(rec.Body, &ep); err != nil {
		return EndpointRecord{}, fmt.Errorf("decode endpoint %q: %w", rec.Name, err)
	}
	return EndpointRecord{Endpoint: ep, Status: rec.Status, Created: rec.Created, Modified: rec.Modified}, nil
}

// DeleteEndpoint marks the endpoint Deleting, then stops its instances and
// removes it in the background.
func (s *Service) DeleteEndpoint(ctx context.Context, name string) error {
	if err := nameArg("endpointName", name); err != nil {
		return err
	}
	_, err := s.opts.Store.Update(ctx, kindEndpoint, name, func(rec *store.Record) error {
		if rec.Status == StatusDeleting {
			return fault.New(fault.InUse, "Endpoint %q is already being deleted.", s.ARN("endpoint", name))
		}
		rec.Status, rec.Modified = StatusDeleting, s.opts.Now()
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return fault.New(fault.NotFound, "Could not find endpoint %q.", s.ARN("endpoint", name))
	}
	if err != nil {
		return err
	}
	s.settle.notify() // a create waiting on this endpoint answers now
	s.startDelete(name)
	return nil
}

func (s *Service) startDelete(name string) {
	key := strings.ToLower(name)
	s.mu.Lock()
	le := s.live[key]
	if le != nil && le.cancel != nil {
		le.cancel() // abandon a deploy in flight
	}
	s.mu.Unlock()
	s.startTransition(name, func(ctx context.Context, le *liveEndpoint) {
		s.opts.Router.Remove(name)
		le.stopAll(context.Background())
		s.mu.Lock()
		if s.live[key] == le {
			delete(s.live, key)
		}
		s.mu.Unlock()
		if err := s.opts.Store.Delete(context.Background(), kindEndpoint, name); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("delete endpoint record", "endpoint", name, "err", err)
		}
		s.log.Info("endpoint deleted", "endpoint", name)
		s.artifactsReleased()
	})
}

// UpdateEndpoint moves an InService endpoint to a new config, blue/green:
// the new variants start while the old ones serve, traffic switches at
// once when all are healthy, then the old instances stop. If the new
// config fails, the endpoint stays InService on the old one and
// FailureReason says why.
func (s *Service) UpdateEndpoint(ctx context.Context, name, configName string, deploymentConfig *DeploymentConfig, retainDeploymentConfig bool) error {
	var v validator
	v.name("endpointName", name)
	v.name("endpointConfigName", configName)
	validateDeploymentConfig(&v, deploymentConfig)
	if err := v.err(); err != nil {
		return err
	}
	cur, err := s.getEndpoint(ctx, name)
	if err != nil {
		return err
	}
	if cur.Status != StatusInService {
		return fault.New(fault.Invalid, "Cannot update in-progress endpoint %q: its status is %s; wait until it is InService.", s.ARN("endpoint", name), cur.Status)
	}
	dep, err := s.snapshot(ctx, configName)
	if err != nil {
		return err
	}
	if err := s.checkCapacity(ctx, name, dep); err != nil {
		return err
	}
	err = s.changeEndpoint(ctx, name, func(status string, ep *Endpoint) (string, error) {
		if status != StatusInService {
			return "", fault.New(fault.Invalid, "Cannot update in-progress endpoint %q.", s.ARN("endpoint", name))
		}
		ep.Pending = dep
		ep.FailureReason = ""
		if !retainDeploymentConfig {
			ep.DeploymentConfig = deploymentConfig
		}
		return StatusUpdating, nil
	})
	if err != nil {
		return err
	}
	policy := deploymentConfig
	if retainDeploymentConfig {
		policy = cur.DeploymentConfig
	}
	s.startTransition(name, func(ctx context.Context, le *liveEndpoint) { s.update(ctx, le, dep, policy) })
	s.awaitSettled(ctx, name)
	return nil
}

// update replaces the live variants of an endpoint with dep's, blue/green:
// the new fleet starts beside the old one, traffic moves to it as the
// endpoint's DeploymentConfig says (all at once, canary or linear steps),
// requests in flight on the old fleet finish, and only then does the old
// fleet stop. If the new fleet cannot start, or loses every healthy
// instance while traffic moves, traffic goes back to the old fleet and the
// endpoint stays InService on it with the reason in FailureReason.
func (s *Service) update(ctx context.Context, le *liveEndpoint, dep *Deployment, policy *DeploymentConfig) {
	rollback := func(reason error) {
		s.log.Warn("endpoint update failed; keeping the previous config", "endpoint", le.name, "err", reason)
		s.setStatus(le.name, StatusInService, func(ep *Endpoint) {
			ep.Pending = nil
			ep.FailureReason = s.failureReason("Update failed and was rolled back: ", reason)
		})
	}
	variants, err := s.startVariants(ctx, le.name, dep)
	if err != nil {
		if ctx.Err() == nil {
			rollback(err)
		}
		return
	}
	capture := s.newCapturer(le.name, dep)
	old, oldCapture := le.variants, le.capture
	abandon := func(reason error) {
		s.opts.Router.Publish(le.table())
		s.drain(le.name, allInstances(variants))
		stopInstances(context.Background(), allInstances(variants))
		if capture != nil {
			capture.Close()
		}
		if reason != nil {
			rollback(reason)
		}
	}
	for _, step := range shiftSteps(policy, variants) {
		s.opts.Router.Publish(mixedTable(le.name, old, variants, step.share, capture))
		if step.wait > 0 {
			if err := s.sleep(ctx, step.wait); err != nil {
				abandon(nil)
				return
			}
		}
		if bad := unhealthyVariant(variants); bad != "" {
			abandon(fmt.Errorf("variant %s of the new config had no healthy instance while traffic was shifting to it", bad))
			return
		}
	}
	le.variants, le.capture = variants, capture
	s.opts.Router.Publish(le.table())
	s.setStatus(le.name, StatusInService, func(ep *Endpoint) {
		ep.Deployed, ep.Pending = dep, nil
		ep.EndpointConfigName = dep.Config.EndpointConfigName
		ep.FailureReason = ""
		ep.Variants = currentVariants(variants)
	})
	s.drain(le.name, allInstances(old))
	if w := terminationWait(policy); w > 0 {
		s.sleep(ctx, w)
	}
	stopInstances(context.Background(), allInstances(old))
	s.artifactsReleased()
	if oldCapture != nil {
		oldCapture.Close()
	}
}

// drain waits, within the invocation timeout, for requests in flight on
// instances that no longer receive traffic.
func (s *Service) drain(endpoint string, insts []runtime.Instance) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.DrainTimeout)
	defer cancel()
	if err := s.opts.Router.Drain(ctx, routerInstances(insts)); err != nil {
		s.log.Warn("instances still busy after the drain timeout; stopping them", "endpoint", endpoint, "err", err)
	}
}

func unhealthyVariant(vs []*liveVariant) string {
	for _, v := range vs {
		healthy := false
		for _, in := range v.instances {
			if in.Healthy() {
				healthy = true
				break
			}
		}
		if !healthy {
			return v.spec.VariantName
		}
	}
	return ""
}

type shiftStep struct {
	share float64       // of traffic on the new fleet
	wait  time.Duration // before the next step
}

// shiftSteps turns a BlueGreenUpdatePolicy into traffic shares. Without a
// policy, traffic moves all at once with no baking period.
func shiftSteps(policy *DeploymentConfig, fleet []*liveVariant) []shiftStep {
	if policy == nil || policy.BlueGreenUpdatePolicy == nil || policy.BlueGreenUpdatePolicy.TrafficRoutingConfiguration == nil {
		return []shiftStep{{share: 1}}
	}
	tr := policy.BlueGreenUpdatePolicy.TrafficRoutingConfiguration
	var wait time.Duration
	if tr.WaitIntervalInSeconds != nil {
		wait = time.Duration(*tr.WaitIntervalInSeconds) * time.Second
	}
	capacity := 0
	for _, v := range fleet {
		if !v.shadow {
			capacity += len(v.instances)
		}
	}
	share := func(c *CapacitySize) float64 {
		if c == nil || capacity == 0 {
			return 1
		}
		if c.Type == "INSTANCE_COUNT" {
			return min(1, float64(c.Value)/float64(capacity))
		}
		return min(1, float64(c.Value)/100)
	}
	switch tr.Type {
	case "CANARY":
		canary := share(tr.CanarySize)
		if canary >= 1 {
			return []shiftStep{{share: 1, wait: wait}}
		}
		return []shiftStep{{share: canary, wait: wait}, {share: 1, wait: wait}}
	case "LINEAR":
		step := share(tr.LinearStepSize)
		var steps []shiftStep
		for f := step; f < 1-1e-9; f += step {
			steps = append(steps, shiftStep{share: f, wait: wait})
		}
		return append(steps, shiftStep{share: 1, wait: wait})
	default: // ALL_AT_ONCE: the wait is a baking period before the old fleet goes
		return []shiftStep{{share: 1, wait: wait}}
	}
}

func terminationWait(policy *DeploymentConfig) time.Duration {
	if policy == nil || policy.BlueGreenUpdatePolicy == nil || policy.BlueGreenUpdatePolicy.TerminationWaitInSeconds == nil {
		return 0
	}
	return time.Duration(*policy.BlueGreenUpdatePolicy.TerminationWaitInSeconds) * time.Second
}

// sleep waits d or until ctx ends.
func (s *Service) sleep(ctx context.Context, d time.Duration) error {
	if s.opts.Sleep != nil {
		return s.opts.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newCapturer starts data capture for a deployment, if it asks for it.
func (s *Service) newCapturer(endpoint string, dep *Deployment) Capturer {
	dc := dep.Config.DataCaptureConfig
	if dc == nil || (dc.EnableCapture != nil && !*dc.EnableCapture) || s.opts.NewCapturer == nil {
		return nil
	}
	dest, err := objstore.ParseS3URI(dc.DestinationS3Uri)
	if err != nil {
		s.log.Error("data capture destination", "endpoint", endpoint, "err", err)
		return nil
	}
	cfg := capture.Config{Destination: dest}
	if dc.InitialSamplingPercentage != nil {
		cfg.SamplingPercentage = int(*dc.InitialSamplingPercentage)
	}
	for _, o := range dc.CaptureOptions {
		cfg.Input = cfg.Input || o.CaptureMode == "Input" || o.CaptureMode == "InputAndOutput"
		cfg.Output = cfg.Output || o.CaptureMode == "Output" || o.CaptureMode == "InputAndOutput"
	}
	if h := dc.CaptureContentTypeHeader; h != nil {
		cfg.CSVContentTypes, cfg.JSONContentTypes = h.CsvContentTypes, h.JsonContentTypes
	}
	return s.opts.NewCapturer(endpoint, cfg)
}

// UpdateEndpointWeightsAndCapacities changes variant weights at once and
// instance counts in the background.
func (s *Service) UpdateEndpointWeightsAndCapacities(ctx context.Context, name string, desired []DesiredWeightAndCapacity) error {
	var v validator
	v.name("endpointName", name)
	if len(desired) == 0 {
		v.add("Value '[]' at 'desiredWeightsAndCapacities' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	for i, d := range desired {
		f := fmt.Sprintf("desiredWeightsAndCapacities.%d.member", i+1)
		v.name(f+".variantName", d.VariantName)
		if d.DesiredWeight != nil && *d.DesiredWeight < 0 {
			v.add("Value '%g' at '%s.desiredWeight' failed to satisfy constraint: Member must have value greater than or equal to 0", *d.DesiredWeight, f)
		}
		if d.DesiredInstanceCount != nil && *d.DesiredInstanceCount < 1 {
			v.add("Value '%d' at '%s.desiredInstanceCount' failed to satisfy constraint: Member must have value greater than or equal to 1", *d.DesiredInstanceCount, f)
		}
		if d.DesiredWeight == nil && d.DesiredInstanceCount == nil {
			v.add("Value at '%s' failed to satisfy constraint: set DesiredWeight, DesiredInstanceCount or both", f)
		}
	}
	if err := v.err(); err != nil {
		return err
	}
	cur, err := s.getEndpoint(ctx, name)
	if err != nil {
		return err
	}
	if cur.Status != StatusInService {
		return fault.New(fault.Invalid, "Cannot update in-progress endpoint %q: its status is %s; wait until it is InService.", s.ARN("endpoint", name), cur.Status)
	}
	known := map[string]bool{}
	for _, vs := range cur.Variants {
		known[strings.ToLower(vs.VariantName)] = true
	}
	extra := 0
	for _, d := range desired {
		if !known[strings.ToLower(d.VariantName)] {
			return fault.New(fault.Invalid, "The variant(s) \"[%s]\" is/are not present in the endpoint %q.", d.VariantName, s.ARN("endpoint", name))
		}
		for _, vs := range cur.Variants {
			if strings.EqualFold(vs.VariantName, d.VariantName) && d.DesiredInstanceCount != nil {
				extra += int(*d.DesiredInstanceCount - vs.CurrentInstanceCount)
			}
		}
	}
	if extra > 0 && s.opts.MaxInstances > 0 {
		if err := s.checkCapacity(ctx, "", &Deployment{Config: EndpointConfig{ProductionVariants: []ProductionVariant{{InitialInstanceCount: ptr(int32(extra))}}}}); err != nil {
			return err
		}
	}
	err = s.changeEndpoint(ctx, name, func(status string, ep *Endpoint) (string, error) {
		if status != StatusInService {
			return "", fault.New(fault.Invalid, "Cannot update in-progress endpoint %q.", s.ARN("endpoint", name))
		}
		applyDesired(ep, desired)
		return StatusUpdating, nil
	})
	if err != nil {
		return err
	}
	s.startTransition(name, func(ctx context.Context, le *liveEndpoint) { s.scale(ctx, le, desired) })
	s.awaitSettled(ctx, name)
	return nil
}

func ptr[T any](v T) *T { return &v }

// applyDesired writes the desired weights and counts into the endpoint's
// variant states and into its deployed config, so a restart restores them.
func applyDesired(ep *Endpoint, desired []DesiredWeightAndCapacity) {
	for _, d := range desired {
		for i := range ep.Variants {
			vs := &ep.Variants[i]
			if !strings.EqualFold(vs.VariantName, d.VariantName) {
				continue
			}
			if d.DesiredWeight != nil {
				vs.DesiredWeight = *d.DesiredWeight
			}
			if d.DesiredInstanceCount != nil {
				vs.DesiredInstanceCount = *d.DesiredInstanceCount
			}
		}
		if ep.Deployed == nil {
			continue
		}
		for i := range ep.Deployed.Config.ProductionVariants {
			pv := &ep.Deployed.Config.ProductionVariants[i]
			if !strings.EqualFold(pv.VariantName, d.VariantName) {
				continue
			}
			if d.DesiredWeight != nil {
				pv.InitialVariantWeight = ptr(*d.DesiredWeight)
			}
			if d.DesiredInstanceCount != nil {
				pv.InitialInstanceCount = ptr(*d.DesiredInstanceCount)
			}
		}
	}
}

// scale applies new weights and instance counts to the live variants.
func (s *Service) scale(ctx context.Context, le *liveEndpoint, desired []DesiredWeightAndCapacity) {
	var failure error
	for _, d := range desired {
		for _, lv := range le.variants {
			if !strings.EqualFold(lv.spec.VariantName, d.VariantName) {
				continue
			}
			if d.DesiredWeight != nil {
				lv.weight = *d.DesiredWeight
			}
			if d.DesiredInstanceCount == nil {
				continue
			}
			want := int(*d.DesiredInstanceCount)
			have := len(lv.instances)
			switch {
			case want > have:
				more, err := s.startInstances(ctx, le.name, lv, want-have)
				if err != nil {
					failure = fmt.Errorf("variant %s: %w", lv.spec.VariantName, err)
					continue
				}
				lv.instances = append(append([]runtime.Instance(nil), lv.instances...), more...)
			case want < have:
				surplus := lv.instances[want:]
				lv.instances = append([]runtime.Instance(nil), lv.instances[:want]...)
				s.opts.Router.Publish(le.table())
				stopInstances(context.Background(), surplus)
			}
		}
	}
	if ctx.Err() != nil {
		return
	}
	s.opts.Router.Publish(le.table())
	s.setStatus(le.name, StatusInService, func(ep *Endpoint) {
		ep.Variants = currentVariants(le.variants)
		if failure != nil {
			ep.FailureReason = s.failureReason("Scaling failed: ", failure)
		} else {
			ep.FailureReason = ""
		}
	})
}

// Restore brings back every persisted endpoint after a restart: those
// that were serving or being created or updated are deployed again, and
// deletions in flight are finished.
//
// Every stored endpoint is decoded, strictly, before anything starts. If
// one cannot be read, Restore fails naming each such endpoint and the
// decode error, and has started and written nothing, so berth does not
// come up. Failing beats serving the others and skipping it: a skipped
// endpoint would stay listed as InService while nothing serves it, and the
// first status write would re-encode it without the fields this binary
// does not know. Records only stop decoding through a berth upgrade that
// lacks a migration or a hand-edited database; both are fixed offline (run
// the berth that wrote the record, or repair the row), and the record is
// kept untouched for that.
func (s *Service) Restore(ctx context.Context) error {
	recs, err := s.opts.Store.List(ctx, kindEndpoint)
	if err != nil {
		return err
	}
	decoded := make([]EndpointRecord, len(recs))
	var unreadable []error
	for i, rec := range recs {
		if decoded[i], err = decodeStoredEndpoint(rec); err != nil {
			unreadable = append(unreadable, err)
		}
	}
	if len(unreadable) > 0 {
		return fmt.Errorf("cannot read %d stored endpoint(s), so nothing was started or changed; run the berth that wrote them, or repair them in berth.db in the data dir: %w", len(unreadable), errors.Join(unreadable...))
	}
	for i, rec := range recs {
		er := decoded[i]
		switch er.Status {
		case StatusDeleting:
			s.startDelete(rec.Name)
		case StatusCreating, StatusInService, StatusSystemUpdating, StatusUpdating:
			if er.Deployed == nil {
				continue
			}
			from := er.Status
			if from != StatusCreating {
				s.setStatus(rec.Name, StatusSystemUpdating, func(ep *Endpoint) { ep.Pending = nil })
			}
			pending, deployed, policy := er.Pending, er.Deployed, er.DeploymentConfig
			s.startTransition(rec.Name, func(ctx context.Context, le *liveEndpoint) {
				s.deploy(ctx, le, deployed, from)
				if pending != nil && ctx.Err() == nil {
					s.setStatus(le.name, StatusUpdating, func(ep *Endpoint) { ep.Pending = pending })
					s.update(ctx, le, pending, policy)
				}
			})
		}
	}
	return nil
}
