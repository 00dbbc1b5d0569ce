package controlplane

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
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

// This file is the endpoint reconcile loop: syncEndpoint is one pass over
// one endpoint, run by the Service's reconciler (reconciler.go).

// liveEndpoint is what runs for an endpoint: the fleet serving its
// Deployed config and, during an update, the fleet of its Pending one.
// Only the endpoint's worker touches it, except Close after the workers
// have ended.
type liveEndpoint struct {
	name    string
	blue    *fleet // runs Deployed; nil until the first pass
	green   *fleet // runs Pending during an update; nil otherwise
	share   float64
	serving bool   // blue has converged once, so its table is published
	table   string // signature of the last published table
	written string // signature of the last persisted observation

	// held is what the fleets held at the end of the last pass, for
	// readers other than the worker; guarded by Service.mu.
	held heldInstances
}

type heldInstances struct{ blue, green []runtime.Instance }

// fleet is the instances of one Deployment, with their data capture.
type fleet struct {
	dep      *Deployment
	variants []*liveVariant // nil until the variants are prepared
	capture  Capturer
	retry    retryState // of preparing and starting
}

type liveVariant struct {
	spec      ProductionVariant
	shadow    bool
	image     runtime.Image
	model     runtime.ModelSource
	env       map[string]string
	weight    float32
	want      int
	instances []*liveInstance
}

// liveInstance is a started instance and since when it has failed its
// health checks (zero while it passes them).
type liveInstance struct {
	runtime.Instance
	sickSince time.Time
}

// retryingReason starts the FailureReason of an InService endpoint whose
// loop cannot start every instance it wants; the loop clears such a
// reason once it converges, and leaves any other (an update's rollback).
const retryingReason = "Could not start every instance; retrying: "

// syncEndpoint is one pass of the reconcile loop over the endpoint key:
// it reads the desired state from the store, compares it with what runs,
// and moves toward it, writing the status and instances it observes.
func (s *Service) syncEndpoint(ctx context.Context, key string) syncResult {
	rec, err := s.opts.Store.Get(ctx, kindEndpoint, key)
	if errors.Is(err, store.ErrNotFound) {
		s.teardown(key)
		return syncResult{gone: true}
	}
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("read endpoint", "endpoint", key, "err", err)
		}
		return syncResult{after: s.opts.RetryBackoff}
	}
	er, err := decodeEndpoint(rec)
	if err != nil {
		s.log.Error("reconcile endpoint", "endpoint", key, "err", err)
		return syncResult{gone: true}
	}
	switch {
	case er.Status == StatusDeleting:
		s.teardown(key)
		if err := s.opts.Store.Delete(context.Background(), kindEndpoint, rec.Name); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("delete endpoint record", "endpoint", rec.Name, "err", err)
			return syncResult{after: s.opts.RetryBackoff}
		}
		s.settle.notify()
		s.log.Info("endpoint deleted", "endpoint", rec.Name)
		s.artifactsReleased()
		return syncResult{gone: true}
	case er.Status == StatusFailed || er.Deployed == nil:
		s.teardown(key)
		return syncResult{gone: true}
	}

	le := s.liveFor(key, rec.Name)
	if le.blue == nil {
		le.blue = &fleet{dep: er.Deployed}
	}
	le.blue.dep = er.Deployed // counts and weights change in place
	start := s.clock.Now()
	st := s.converge(ctx, le.name, le.blue)
	if ctx.Err() != nil {
		return syncResult{} // deleted or shutting down: the next pass sees which
	}
	var next time.Time
	if !st.done {
		next = st.next
	}
	if !le.serving {
		switch {
		case st.done:
			le.serving = true
			s.log.Info("endpoint in service", "endpoint", le.name, "from", er.Status, "took", s.clock.Now().Sub(start))
		case st.err != nil && le.blue.retry.attempts >= s.opts.StartAttempts:
			s.log.Warn("endpoint failed", "endpoint", le.name, "attempts", le.blue.retry.attempts, "err", st.err)
			s.teardown(key)
			s.observe(rec.Name, func(status string, ep *Endpoint) string {
				ep.FailureReason = s.failureReason("", st.err)
				ep.Instances = nil
				return StatusFailed
			})
			return syncResult{gone: true}
		default:
			if st.tried {
				s.log.Warn("instances failed to start; retrying", "endpoint", le.name, "attempt", le.blue.retry.attempts, "err", st.err)
			}
			s.stopRetired(st.retired)
			s.holdSnapshot(le)
			return syncResult{after: s.until(next)}
		}
	}

	// An update in flight moves one step (shift.go).
	if er.Pending != nil {
		blue := le.blue
		if t := s.stepUpdate(ctx, le, &er); !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
		if ctx.Err() != nil {
			return syncResult{}
		}
		if le.blue != blue { // promoted: st was the old fleet's
			st.err = nil
		}
	} else if le.green != nil {
		s.abandonGreen(le)
	}
	s.publish(le)
	s.stopRetired(st.retired)

	// Record what runs, and the status it makes.
	var reason string
	if st.err != nil {
		reason = s.failureReason(retryingReason, st.err)
		if st.tried {
			s.log.Warn("instances failed to start; retrying", "endpoint", le.name, "attempt", le.blue.retry.attempts, "err", st.err)
		}
	}
	s.holdSnapshot(le)
	record := func(status string, ep *Endpoint) string {
		ep.Variants = currentVariants(le.blue.variants, ep.Variants)
		ep.Instances = instanceRefs(le)
		if reason != "" {
			ep.FailureReason = reason
		} else if strings.HasPrefix(ep.FailureReason, retryingReason) {
			ep.FailureReason = ""
		}
		switch {
		case ep.Pending != nil:
			return status // Updating until the update ends
		case status == StatusCreating:
			ep.FailureReason = ""
			return StatusInService
		}
		return StatusInService // SystemUpdating, RollingBack, or Updating weights and counts
	}
	// Most passes see nothing new: check against what this pass read
	// before taking the store's write lock. (A change written since the
	// read is the API's, and it notified the loop for another pass.)
	if er.Pending == nil {
		probe := er.Endpoint
		if observationSig(record(er.Status, &probe), &probe) == le.written {
			return syncResult{after: s.until(next)}
		}
	}
	s.observe(rec.Name, record)
	return syncResult{after: s.until(next)}
}

// until turns a due time into a wait; zero leaves it to the period.
func (s *Service) until(t time.Time) time.Duration {
	if t.IsZero() {
		return 0
	}
	return max(t.Sub(s.clock.Now()), time.Millisecond)
}

func (s *Service) liveFor(key, name string) *liveEndpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	le := s.live[key]
	if le == nil {
		le = &liveEndpoint{name: name}
		s.live[key] = le
	}
	return le
}

// holdSnapshot records what le holds for readers other than its worker.
func (s *Service) holdSnapshot(le *liveEndpoint) {
	h := heldInstances{blue: le.blue.instances(), green: le.green.instances()}
	s.mu.Lock()
	le.held = h
	s.mu.Unlock()
}

// fleetState is what converge saw of a fleet.
type fleetState struct {
	done    bool      // every variant runs its wanted count
	err     error     // why instances could not start, if they could not
	tried   bool      // err is from this pass, not an earlier one
	next    time.Time // when to try again
	retired []runtime.Instance
}

// converge moves a fleet one step toward its Deployment: it prepares the
// variants (image, model data) if needed, drops instances unhealthy for
// longer than UnhealthyGrace and surplus ones (returned in retired, to be
// stopped once the routing table no longer names them), and starts
// missing ones unless a retry is not yet due.
func (s *Service) converge(ctx context.Context, endpoint string, f *fleet) fleetState {
	var st fleetState
	now := s.clock.Now()
	if f.variants == nil {
		if !f.retry.due(now) {
			return fleetState{err: f.retry.err, next: f.retry.next}
		}
		vs, err := s.prepareVariants(ctx, f.dep)
		if err != nil {
			if ctx.Err() == nil {
				f.retry.fail(err, now, s.opts.RetryBackoff, s.opts.MaxRetryBackoff)
			}
			return fleetState{err: err, next: f.retry.next, tried: true}
		}
		f.variants = vs
		f.capture = s.newCapturer(endpoint, f.dep)
	}
	want := map[string]ProductionVariant{}
	for _, pv := range append(f.dep.Config.ProductionVariants, f.dep.Config.ShadowProductionVariants...) {
		want[strings.ToLower(pv.VariantName)] = pv
	}
	missing := 0
	for _, lv := range f.variants {
		if pv, ok := want[strings.ToLower(lv.spec.VariantName)]; ok {
			lv.want, lv.weight = int(countOf(pv)), weightOf(pv)
		}
		kept := lv.instances[:0:0]
		for _, in := range lv.instances {
			switch {
			case in.Healthy():
				in.sickSince = time.Time{}
			case in.sickSince.IsZero():
				in.sickSince = now
			case now.Sub(in.sickSince) >= s.opts.UnhealthyGrace:
				s.log.Warn("replacing an instance unhealthy for too long", "endpoint", endpoint, "instance", in.ID(), "since", in.sickSince)
				st.retired = append(st.retired, in.Instance)
				continue
			}
			kept = append(kept, in)
		}
		if len(kept) > lv.want {
			for _, in := range kept[lv.want:] {
				st.retired = append(st.retired, in.Instance)
			}
			kept = kept[:lv.want]
		}
		lv.instances = kept
		missing += lv.want - len(kept)
	}
	if missing == 0 {
		f.retry.reset()
		st.done = true
		return st
	}
	if !f.retry.due(now) {
		st.err, st.next = f.retry.err, f.retry.next
		return st
	}
	var errs []error
	for _, lv := range f.variants {
		if n := lv.want - len(lv.instances); n > 0 {
			started, err := s.startInstances(ctx, endpoint, lv, n)
			for _, in := range started {
				lv.instances = append(lv.instances, &liveInstance{Instance: in})
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("variant %s: %w", lv.spec.VariantName, err))
			}
		}
	}
	if ctx.Err() != nil {
		return st
	}
	if len(errs) > 0 {
		f.retry.fail(errs[0], s.clock.Now(), s.opts.RetryBackoff, s.opts.MaxRetryBackoff)
		st.err, st.next, st.tried = errs[0], f.retry.next, true
		return st
	}
	f.retry.reset()
	st.done = true
	return st
}

// stopRetired stops instances the routing table no longer names, after
// the requests in flight on them end.
func (s *Service) stopRetired(insts []runtime.Instance) {
	if len(insts) == 0 {
		return
	}
	s.drain("", insts)
	stopInstances(context.Background(), insts)
}

// prepareVariants resolves the image and fetches the model data of every
// variant of dep.
func (s *Service) prepareVariants(ctx context.Context, dep *Deployment) ([]*liveVariant, error) {
	var out []*liveVariant
	shadows := len(dep.Config.ProductionVariants)
	for i, pv := range append(dep.Config.ProductionVariants, dep.Config.ShadowProductionVariants...) {
		lv, err := s.prepareVariant(ctx, pv, dep.Models[pv.ModelName])
		if err != nil {
			return nil, fmt.Errorf("variant %s: %w", pv.VariantName, err)
		}
		lv.shadow = i >= shadows
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
	lv := &liveVariant{spec: pv, image: img, env: c.Environment, weight: weightOf(pv), want: int(countOf(pv))}
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

// instanceSpec is the one place that turns a variant into what a runtime
// starts.
func (s *Service) instanceSpec(endpoint string, lv *liveVariant) runtime.InstanceSpec {
	timeout := s.opts.StartupTimeout
	if t := lv.spec.ContainerStartupHealthCheckTimeoutInSeconds; t != nil {
		timeout = time.Duration(*t) * time.Second
	}
	return runtime.InstanceSpec{
		ID: fmt.Sprintf("%s/%s/%s", endpoint, lv.spec.VariantName, shortID()),
		// Today one container, the model's primary container.
		Containers: []runtime.ContainerSpec{{
			Name:  runtime.PrimaryContainer,
			Image: lv.image,
			Env:   lv.env,
			Model: lv.model,
		}},
		StartupTimeout: timeout,
	}
}

// startInstances starts n instances of a variant in parallel and returns
// those that started, with the first error if any did not.
func (s *Service) startInstances(ctx context.Context, endpoint string, lv *liveVariant, n int) ([]runtime.Instance, error) {
	insts := make([]runtime.Instance, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			insts[i], errs[i] = s.opts.Runtime.Start(ctx, s.instanceSpec(endpoint, lv))
		}()
	}
	wg.Wait()
	var started []runtime.Instance
	for _, in := range insts {
		if in != nil {
			started = append(started, in)
		}
	}
	return started, errors.Join(errs...)
}

func shortID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// observe persists what a pass observed, unless the endpoint is being
// deleted meanwhile (the API call wins) or nothing changed since the last
// write. change returns the new status.
func (s *Service) observe(name string, change func(status string, ep *Endpoint) string) {
	key := loopKey(name)
	var sig string
	err := s.changeEndpoint(context.Background(), name, func(cur string, ep *Endpoint) (string, error) {
		if cur == StatusDeleting {
			return "", errDeleting
		}
		status := change(cur, ep)
		sig = observationSig(status, ep)
		if s.lastWritten(key) == sig {
			return "", errUnchanged
		}
		return status, nil
	})
	switch {
	case err == nil:
		s.mu.Lock()
		if le := s.live[key]; le != nil {
			le.written = sig
		}
		s.mu.Unlock()
	case errors.Is(err, errDeleting), errors.Is(err, errUnchanged), errors.Is(err, store.ErrNotFound):
	default:
		s.log.Error("persist endpoint status", "endpoint", name, "err", err)
	}
}

var (
	errDeleting  = errors.New("endpoint is being deleted")
	errUnchanged = errors.New("nothing to write")
)

func (s *Service) lastWritten(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if le := s.live[key]; le != nil {
		return le.written
	}
	return ""
}

// observationSig sums up what observe writes, so an unchanged pass writes
// nothing.
func observationSig(status string, ep *Endpoint) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%v|", status, ep.FailureReason, ep.EndpointConfigName, ep.Pending != nil)
	if ep.Update != nil {
		fmt.Fprintf(&b, "%d@%d|", ep.Update.Step, ep.Update.StepStarted.UnixNano())
	}
	for _, v := range ep.Variants {
		fmt.Fprintf(&b, "%s:%g/%g:%d/%d|", v.VariantName, v.CurrentWeight, v.DesiredWeight, v.CurrentInstanceCount, v.DesiredInstanceCount)
	}
	for _, in := range ep.Instances {
		fmt.Fprintf(&b, "%s,", in.ID)
	}
	return b.String()
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

// teardown stops everything an endpoint runs and forgets it.
func (s *Service) teardown(key string) {
	s.mu.Lock()
	le := s.live[key]
	delete(s.live, key)
	s.mu.Unlock()
	if le == nil {
		return
	}
	if le.serving || le.table != "" {
		s.opts.Router.Remove(le.name)
	}
	le.stopAll(context.Background())
	s.artifactsReleased()
}

func (le *liveEndpoint) stopAll(ctx context.Context) {
	for _, f := range []*fleet{le.blue, le.green} {
		if f != nil {
			f.stop(ctx)
		}
	}
	le.blue, le.green = nil, nil
}

func (f *fleet) stop(ctx context.Context) {
	stopInstances(ctx, f.instances())
	for _, v := range f.variants {
		v.instances = nil
	}
	if f.capture != nil {
		f.capture.Close()
		f.capture = nil
	}
}

func (f *fleet) instances() []runtime.Instance {
	if f == nil {
		return nil
	}
	var out []runtime.Instance
	for _, v := range f.variants {
		for _, in := range v.instances {
			out = append(out, in.Instance)
		}
	}
	return out
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

func routerInstances(insts []*liveInstance) []router.Instance {
	out := make([]router.Instance, len(insts))
	for i, in := range insts {
		out[i] = in.Instance
	}
	return out
}

func asRouter(insts []runtime.Instance) []router.Instance {
	out := make([]router.Instance, len(insts))
	for i, in := range insts {
		out[i] = in
	}
	return out
}

// publish gives the router the endpoint's table, if it changed.
func (s *Service) publish(le *liveEndpoint) {
	if !le.serving {
		return
	}
	var ep *router.Endpoint
	if le.green != nil && le.share > 0 {
		ep = mixedTable(le.name, le.blue.variants, le.green.variants, le.share, le.green.capture)
	} else {
		ep = mixedTable(le.name, nil, le.blue.variants, 1, le.blue.capture)
	}
	sig := tableSig(ep)
	if sig == le.table {
		return
	}
	s.opts.Router.Publish(ep)
	le.table = sig
}

func tableSig(ep *router.Endpoint) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%p|", ep.Capture)
	for _, vs := range [][]*router.Variant{ep.Variants, ep.Shadows} {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s:%g:%d:", v.Name, v.Weight, v.Strategy)
			for _, in := range v.Instances {
				fmt.Fprintf(&b, "%p,", in)
			}
			b.WriteByte('|')
		}
		b.WriteByte('#')
	}
	return b.String()
}

// currentVariants is the VariantStates of a fleet; prev keeps the desired
// values and image resolution times already recorded.
func currentVariants(vs []*liveVariant, prev []VariantState) []VariantState {
	var out []VariantState
	for _, v := range vs {
		st := VariantState{
			VariantName:          v.spec.VariantName,
			Shadow:               v.shadow,
			CurrentWeight:        v.weight,
			DesiredWeight:        v.weight,
			CurrentInstanceCount: int32(len(v.instances)),
			DesiredInstanceCount: int32(v.want),
			DeployedImages: []DeployedImage{{
				SpecifiedImage: v.image.Name,
				ResolvedImage:  strings.Join(v.image.Command, " "),
				ResolutionTime: float64(time.Now().UnixMilli()) / 1000,
			}},
		}
		if i := slices.IndexFunc(prev, func(p VariantState) bool { return strings.EqualFold(p.VariantName, v.spec.VariantName) }); i >= 0 {
			if d := prev[i].DeployedImages; len(d) == 1 && d[0].SpecifiedImage == v.image.Name && d[0].ResolutionTime != 0 {
				st.DeployedImages[0].ResolutionTime = d[0].ResolutionTime
			}
		}
		out = append(out, st)
	}
	return out
}

// instanceRefs lists the instances an endpoint holds, for the record.
func instanceRefs(le *liveEndpoint) []InstanceRef {
	var out []InstanceRef
	for _, f := range []*fleet{le.blue, le.green} {
		if f == nil {
			continue
		}
		for _, v := range f.variants {
			for _, in := range v.instances {
				out = append(out, InstanceRef{ID: in.ID(), Variant: v.spec.VariantName, Pending: f == le.green})
			}
		}
	}
	return out
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
