// Package controlplane implements SageMaker's control plane for models,
// endpoint configs, endpoints and transform jobs: it validates requests as SageMaker does,
// persists every accepted change before acknowledging it, and reconciles
// endpoints with running instances.
//
// # Desired state and the reconcile loop
//
// An endpoint API call (desired.go) only validates and writes desired
// state: the frozen config and models (Endpoint.Deployed, and Pending
// during an update), per-variant counts and weights, the update policy and
// its progress (UpdateProgress), and a Generation that every change bumps.
// It then notifies the endpoint's reconcile loop and returns (after the
// settle wait, settle.go).
//
// The loop (reconcile.go) is level-triggered: each pass reads the stored
// record, compares it with what runs, and moves one step toward it. It
// starts missing instances, stops surplus ones, replaces instances that
// have been unhealthy longer than UnhealthyGrace, retries failed starts
// with backoff (RetryBackoff doubling up to MaxRetryBackoff), drives a
// blue/green update step by step (shift.go), and writes back what it saw:
// the status, FailureReason, current counts and the IDs of the instances
// it holds. Status is derived from those observations: Creating until the
// fleet first runs (Failed after StartAttempts failed rounds), InService,
// Updating while a new config or new counts are being applied,
// RollingBack while a failed update's new fleet goes away, SystemUpdating
// while a restart brings an endpoint back, Deleting until
// the loop has stopped everything and removed the record. An InService
// endpoint that cannot start every instance it wants stays InService with
// a FailureReason saying so, and the loop keeps trying.
//
// Passes run on one worker goroutine per endpoint, created on demand and
// ended when the endpoint is gone (reconciler.go). One goroutine per key,
// rather than a fixed pool over a shared queue, because a pass can block
// for a whole model start (up to the startup timeout) and a blue/green
// step for its wait interval: per-key workers keep one slow endpoint from
// delaying the others and never run two passes of one endpoint at once,
// and an idle endpoint costs one parked goroutine. A worker wakes on a
// notification (an API call, at once, so CreateEndpoint reaches InService
// as fast as the model starts), when a retry or step falls due, and every
// ResyncPeriod to look at instance health (runtime.Instance reports
// health only when asked, so health is sampled on that period rather than
// pushed). Close stops every worker and waits for it; Restore
// (restore.go) hands every stored endpoint to the loop after a restart.
// A blue/green update persists each step it takes, so an update in flight
// when berth dies resumes at that step after the restart and completes
// (or rolls back, as any update whose new fleet fails).
//
// # Transform jobs
//
// Transform jobs (transform.go) are the second resource kind on this
// shape. CreateTransformJob validates, stores the job InProgress with the
// model frozen into it, and notifies s.jobs. A pass over an InProgress job
// runs it whole: it starts TransformResources.InstanceCount instances with
// the batch environment, asks the container's GET /execution-parameters,
// publishes the instances to the router under a table named
// "transform-job:<name>" (a name no client can invoke, since endpoint
// names cannot hold ':'), and hands the data path to internal/batch,
// which checkpoints each finished object in the store. StopTransformJob
// writes Stopping and interrupts the pass; the pass's deferred clean-up
// stops the instances and the next pass writes Stopped. Close interrupts
// running jobs without changing their status, and Restore hands them back
// to the loop, which skips the checkpointed objects.
//
// # Adding a resource kind
//
// An async queue or an accelerator slice plugs into the
// same shape: store its desired state as a record of its own kind (with a
// Generation), make its API calls validate, write and notify, and give it
// a reconciler of its own:
//
//	s.jobs = newReconciler(s.clock, period, s.syncJob)
//
// where syncJob(ctx, name) reads the record, compares it with what runs
// (instances through the same runtime.Runtime, one instanceSpec builder),
// acts, writes the observed status, and returns when to look again
// (syncResult.after) or that the resource is gone (syncResult.gone).
// retryState gives it the same backoff, the Clock makes its timing
// testable, and Close stops it beside the endpoint loop.
package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-io/berth/internal/artifacts"
	"github.com/berth-io/berth/internal/capture"
	"github.com/berth-io/berth/internal/fault"
	"github.com/berth-io/berth/internal/objstore"
	"github.com/berth-io/berth/internal/router"
	"github.com/berth-io/berth/internal/runtime"
	"github.com/berth-io/berth/internal/store"
)

// Resource kinds in the store.
const (
	kindModel          = "model"
	kindEndpointConfig = "endpoint-config"
	kindEndpoint       = "endpoint"
)

// ArtifactFetcher gets model data onto the local disk.
type ArtifactFetcher interface {
	Check(ctx context.Context, src artifacts.Source) error
	Fetch(ctx context.Context, src artifacts.Source) (string, error)
}

// ImageResolver turns a container's Image into something runnable.
type ImageResolver interface {
	Resolve(name string) (runtime.Image, error)
}

// Publisher receives the routing table of each endpoint.
type Publisher interface {
	Publish(ep *router.Endpoint)
	Remove(name string)
	// Drain waits until none of insts has a request in flight.
	Drain(ctx context.Context, insts []router.Instance) error
}

// Capturer is an endpoint's data capture writer.
type Capturer interface {
	router.Capturer
	// Close writes what is queued and stops the writer.
	Close()
}

// Options wires a Service.
type Options struct {
	Store     *store.Store
	Artifacts ArtifactFetcher
	Images    ImageResolver
	Runtime   runtime.Runtime
	Router    Publisher
	// Region and AccountID build ARNs.
	Region    string
	AccountID string
	// StartupTimeout is the default readiness deadline of an instance.
	StartupTimeout time.Duration
	// MaxInstances bounds the instances of all endpoints together.
	MaxInstances int
	// DrainTimeout bounds the wait for requests in flight on instances
	// that are being replaced; the invocation timeout is a good value.
	DrainTimeout time.Duration
	// NewCapturer starts data capture for an endpoint; nil disables it.
	NewCapturer func(endpoint string, cfg capture.Config) Capturer
	// SettleWait is how long CreateEndpoint, UpdateEndpoint and
	// UpdateEndpointWeightsAndCapacities wait for the endpoint to settle
	// before they answer; 0 answers at once.
	SettleWait time.Duration
	// Clock drives the reconcile loop's timers (retries, blue/green waits,
	// the unhealthy grace period); the real clock when nil.
	Clock Clock
	// StartAttempts is how many rounds of failed starts a new endpoint
	// (or the new fleet of an update, or an endpoint being restored)
	// gets before it fails (or rolls back); default 3. An InService
	// endpoint retries for ever.
	StartAttempts int
	// RetryBackoff is the wait after the first failed start, doubled
	// after each further failure up to MaxRetryBackoff; defaults 1 s and
	// 1 min.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// UnhealthyGrace is how long an instance may fail its health checks
	// (while the runtime restarts it) before the loop replaces it with a
	// new one; default 2 min.
	UnhealthyGrace time.Duration
	// ResyncPeriod is how often an idle endpoint's loop looks at its
	// instances; default 5 s.
	ResyncPeriod time.Duration
	Logger       *slog.Logger
	// Now returns the current time; time.Now when nil.
	Now func() time.Time
	// Objects holds transform jobs' input and output, and Jobs sends
	// their mini-batches (the router); with either nil, CreateTransformJob
	// is refused.
	Objects objstore.Store
	Jobs    JobInvoker
	// DataDir is berth's data directory. FailureReasons, which any API
	// client may read, name it "<data-dir>" instead.
	DataDir string
}

// Service is the control plane.
type Service struct {
	opts Options
	log  *slog.Logger
	hide *strings.Replacer // rewrites host paths in FailureReasons; nil: none

	clock Clock
	loop  *reconciler // of endpoints, by loopKey
	jobs  *reconciler // of transform jobs, by loopKey

	mu   sync.Mutex
	live map[string]*liveEndpoint // by loopKey; each touched by its worker only

	settle      *settleNotifier // status writes, for awaitSettled
	tokenMu     sync.Mutex
	tokenSecret []byte // signs list NextTokens; loaded on first use

	// bg owns the goroutines that retire replaced fleets; Close cancels
	// their waits and waits for them.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
}

// New returns a Service. Call Restore once to bring back persisted endpoints.
func New(opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.StartupTimeout <= 0 {
		opts.StartupTimeout = 60 * time.Second
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = 60 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.StartAttempts <= 0 {
		opts.StartAttempts = 3
	}
	if opts.RetryBackoff <= 0 {
		opts.RetryBackoff = time.Second
	}
	if opts.MaxRetryBackoff < opts.RetryBackoff {
		opts.MaxRetryBackoff = max(time.Minute, opts.RetryBackoff)
	}
	if opts.UnhealthyGrace <= 0 {
		opts.UnhealthyGrace = 2 * time.Minute
	}
	if opts.ResyncPeriod <= 0 {
		opts.ResyncPeriod = 5 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		opts:     opts,
		clock:    opts.Clock,
		hide:     pathHider(opts.DataDir),
		log:      opts.Logger.With("component", "controlplane"),
		live:     map[string]*liveEndpoint{},
		settle:   newSettleNotifier(),
		bgCtx:    ctx,
		bgCancel: cancel,
	}
	s.loop = newReconciler(opts.Clock, opts.ResyncPeriod, s.syncEndpoint)
	s.jobs = newReconciler(opts.Clock, opts.ResyncPeriod, s.syncJob)
	return s
}

// Close cancels background work, stops every instance and waits.
func (s *Service) Close(ctx context.Context) {
	s.StopSettleWaits()
	s.loop.stop()
	s.jobs.stop()
	s.bgCancel()
	s.bg.Wait()
	s.mu.Lock()
	eps := make([]*liveEndpoint, 0, len(s.live))
	for _, le := range s.live {
		eps = append(eps, le)
	}
	s.live = map[string]*liveEndpoint{}
	s.mu.Unlock()
	for _, le := range eps {
		le.stopAll(ctx)
	}
}

// pathHider returns a replacer that writes dataDir, as given and with
// symbolic links resolved, as "<data-dir>"; nil if dataDir is empty.
func pathHider(dataDir string) *strings.Replacer {
	if dataDir == "" {
		return nil
	}
	names := []string{filepath.Clean(dataDir)}
	if abs, err := filepath.Abs(dataDir); err == nil {
		names = append(names, abs)
	}
	if real, err := filepath.EvalSymlinks(dataDir); err == nil {
		names = append(names, real)
	}
	// Longest first, so that a resolved path is not half replaced by a
	// shorter spelling of it.
	slices.SortFunc(names, func(a, b string) int { return len(b) - len(a) })
	var pairs []string
	for _, n := range slices.Compact(names) {
		if n != "/" && n != "." {
			pairs = append(pairs, n, "<data-dir>")
		}
	}
	return strings.NewReplacer(pairs...)
}

// ARN returns the ARN of a resource; SageMaker lower-cases the name.
func (s *Service) ARN(kind, name string) string {
	return fmt.Sprintf("arn:aws:sagemaker:%s:%s:%s/%s", s.opts.Region, s.opts.AccountID, kind, strings.ToLower(name))
}

// Region returns the configured region.
func (s *Service) Region() string { return s.opts.Region }

// ---- models ----

// ModelRecord is a stored model with its times.
type ModelRecord struct {
	Model
	Created time.Time
}

// CreateModel validates and stores a model. Its image must resolve and its
// model data must exist, as SageMaker checks both before accepting it.
func (s *Service) CreateModel(ctx context.Context, m Model) error {
	if err := validateModel(&m); err != nil {
		return err
	}
	if err := s.checkSupported(&m); err != nil {
		return err
	}
	for i, c := range s.containers(&m) {
		if c.Image != "" {
			img, err := s.opts.Images.Resolve(c.Image)
			if err != nil {
				return err
			}
			if err := checkProcessEnv(&m, i, c, img); err != nil {
				return err
			}
		}
		if src, ok := sourceOf(c); ok {
			var refused *artifacts.NotAllowedError
			if err := s.opts.Artifacts.Check(ctx, src); errors.As(err, &refused) {
				return fault.Wrap(fault.Invalid, err, "Model data at %s is not allowed (%s): berth reads file:// model data only under the directories listed in model_data.allowed_file_dirs of its config file. Add the model's directory there, or upload the model to S3.", src.URL, refused.Why)
			} else if err != nil {
				return fault.Wrap(fault.Invalid, err, "Could not access model data at %s. Please ensure that the object exists and that berth can read it: %s", src.URL, err)
			}
		}
	}
	if _, err := s.getModel(ctx, m.ModelName); err == nil {
		return fault.New(fault.Exists, "Cannot create already existing model %q.", s.ARN("model", m.ModelName))
	}
	return s.create(ctx, kindModel, m.ModelName, "", m, "model")
}

func (s *Service) checkSupported(m *Model) error {
	if len(m.Containers) > 0 {
		return fault.New(fault.Invalid, "Containers (multi-container models) are not supported by this version of berth yet; use PrimaryContainer.")
	}
	if c := m.PrimaryContainer; c != nil {
		if c.Mode == "MultiModel" {
			return fault.New(fault.Invalid, "Mode MultiModel (multi-model endpoints) is not supported by this version of berth yet.")
		}
		if c.ModelPackageName != "" {
			return fault.New(fault.Invalid, "ModelPackageName is not supported by berth; give Image and ModelDataUrl instead.")
		}
	}
	return nil
}

func (s *Service) containers(m *Model) []*ContainerDefinition {
	var out []*ContainerDefinition
	if m.PrimaryContainer != nil {
		out = append(out, m.PrimaryContainer)
	}
	for i := range m.Containers {
		out = append(out, &m.Containers[i])
	}
	return out
}

// checkProcessEnv refuses Environment keys that a local-process image
// must not get (see runtime.RefusedProcessEnv). c is container i of m.
func checkProcessEnv(m *Model, i int, c *ContainerDefinition, img runtime.Image) error {
	if img.Kind != runtime.KindProcess {
		return nil
	}
	field := "primaryContainer"
	if m.PrimaryContainer == nil {
		field = fmt.Sprintf("containers.%d", i+1)
	}
	keys := slices.Sorted(maps.Keys(c.Environment))
	for _, k := range keys {
		if why := runtime.RefusedProcessEnv(k); why != "" {
			return fault.New(fault.Invalid, "Environment variable %s at '%s.environment' is not allowed for image %s, which berth runs as a local process: %s.", k, field, c.Image, why)
		}
	}
	return nil
}

// sourceOf returns the model data of a container, if it has any.
func sourceOf(c *ContainerDefinition) (artifacts.Source, bool) {
	if c.ModelDataUrl != "" {
		return artifacts.Source{URL: c.ModelDataUrl}, true
	}
	if ds := c.ModelDataSource; ds != nil && ds.S3DataSource != nil {
		return artifacts.Source{URL: ds.S3DataSource.S3Uri, Prefix: ds.S3DataSource.S3DataType == "S3Prefix"}, true
	}
	return artifacts.Source{}, false
}

// DescribeModel returns a stored model.
func (s *Service) DescribeModel(ctx context.Context, name string) (ModelRecord, error) {
	if err := nameArg("modelName", name); err != nil {
		return ModelRecord{}, err
	}
	return s.getModel(ctx, name)
}

func (s *Service) getModel(ctx context.Context, name string) (ModelRecord, error) {
	rec, err := s.opts.Store.Get(ctx, kindModel, name)
	if errors.Is(err, store.ErrNotFound) {
		return ModelRecord{}, fault.New(fault.NotFound, "Could not find model %q.", s.ARN("model", name))
	}
	if err != nil {
		return ModelRecord{}, err
	}
	var m Model
	if err := json.Unmarshal(rec.Body, &m); err != nil {
		return ModelRecord{}, fmt.Errorf("decode model %q: %w", name, err)
	}
	return ModelRecord{Model: m, Created: rec.Created}, nil
}

// DeleteModel removes a model. Endpoints that run it keep running.
func (s *Service) DeleteModel(ctx context.Context, name string) error {
	if err := nameArg("modelName", name); err != nil {
		return err
	}
	if err := s.opts.Store.Delete(ctx, kindModel, name); errors.Is(err, store.ErrNotFound) {
		return fault.New(fault.NotFound, "Could not find model %q.", s.ARN("model", name))
	} else if err != nil {
		return err
	}
	s.artifactsReleased()
	return nil
}

// ---- endpoint configs ----

// EndpointConfigRecord is a stored endpoint config with its times.
type EndpointConfigRecord struct {
	EndpointConfig
	Created time.Time
}

// CreateEndpointConfig validates and stores an endpoint config. Every
// model it names must exist.
func (s *Service) CreateEndpointConfig(ctx context.Context, c EndpointConfig) error {
	if err := validateEndpointConfig(&c); err != nil {
		return err
	}
	if err := checkConfigSupported(&c); err != nil {
		return err
	}
	for _, pv := range append(c.ProductionVariants, c.ShadowProductionVariants...) {
		if _, err := s.getModel(ctx, pv.ModelName); err != nil {
			return err
		}
	}
	if _, err := s.getEndpointConfig(ctx, c.EndpointConfigName); err == nil {
		return fault.New(fault.Exists, "Cannot create already existing endpoint configuration %q.", s.ARN("endpoint-config", c.EndpointConfigName))
	}
	return s.create(ctx, kindEndpointConfig, c.EndpointConfigName, "", c, "endpoint configuration")
}

func checkConfigSupported(c *EndpointConfig) error {
	unsupported := func(what string) error {
		return fault.New(fault.Invalid, "%s is not supported by this version of berth yet.", what)
	}
	switch {
	case c.AsyncInferenceConfig != nil:
		return unsupported("AsyncInferenceConfig (asynchronous inference)")
	case c.ExplainerConfig != nil:
		return unsupported("ExplainerConfig")
	}
	for _, pv := range append(c.ProductionVariants, c.ShadowProductionVariants...) {
		if pv.ServerlessConfig != nil {
			return unsupported("ServerlessConfig (serverless variants)")
		}
		if pv.AcceleratorType != "" {
			return unsupported("AcceleratorType (fractional accelerators)")
		}
	}
	return nil
}

// DescribeEndpointConfig returns a stored endpoint config.
func (s *Service) DescribeEndpointConfig(ctx context.Context, name string) (EndpointConfigRecord, error) {
	if err := nameArg("endpointConfigName", name); err != nil {
		return EndpointConfigRecord{}, err
	}
	return s.getEndpointConfig(ctx, name)
}

func (s *Service) getEndpointConfig(ctx context.Context, name string) (EndpointConfigRecord, error) {
	rec, err := s.opts.Store.Get(ctx, kindEndpointConfig, name)
	if errors.Is(err, store.ErrNotFound) {
		return EndpointConfigRecord{}, fault.New(fault.NotFound, "Could not find endpoint configuration %q.", s.ARN("endpoint-config", name))
	}
	if err != nil {
		return EndpointConfigRecord{}, err
	}
	var c EndpointConfig
	if err := json.Unmarshal(rec.Body, &c); err != nil {
		return EndpointConfigRecord{}, fmt.Errorf("decode endpoint config %q: %w", name, err)
	}
	return EndpointConfigRecord{EndpointConfig: c, Created: rec.Created}, nil
}

// DeleteEndpointConfig removes an endpoint config. Endpoints that use it
// keep running.
func (s *Service) DeleteEndpointConfig(ctx context.Context, name string) error {
	if err := nameArg("endpointConfigName", name); err != nil {
		return err
	}
	if err := s.opts.Store.Delete(ctx, kindEndpointConfig, name); errors.Is(err, store.ErrNotFound) {
		return fault.New(fault.NotFound, "Could not find endpoint configuration %q.", s.ARN("endpoint-config", name))
	} else if err != nil {
		return err
	}
	return nil
}

// ---- helpers ----

func (s *Service) create(ctx context.Context, kind, name, status string, body any, noun string) error {
	data, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode %s: %w", kind, err)
	}
	now := s.opts.Now()
	err = s.opts.Store.Create(ctx, store.Record{Kind: kind, Name: name, Created: now, Modified: now, Status: status, Body: data})
	if errors.Is(err, store.ErrExists) {
		return fault.New(fault.Exists, "Cannot create already existing %s %q.", noun, s.ARN(kind, name))
	}
	return err
}

func nameArg(field, name string) error {
	var v validator
	v.name(field, name)
	return v.err()
}
