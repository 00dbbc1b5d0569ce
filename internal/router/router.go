// Package router carries invocations to model instances, in two steps
// kept apart so that every kind of inference shares them:
//
//   - The picker (pick.go) chooses a production variant by weight (or
//     the one the client targets) and one of its healthy instances (least
//     outstanding requests or random), excluding the one that just failed
//     when it retries. When a cap applies (Variant.MaxConcurrency or
//     Request.MaxConcurrency), the request then waits in a queue for a
//     slot on that instance, bounded by its own timeout and context;
//     queued requests count as outstanding, so least-outstanding picking
//     sends new ones elsewhere.
//   - The relay (relay.go) sends one request to an explicit target: a
//     container's address on the chosen instance and a request-target,
//     with the request's own headers, timeout and size limits. Requests
//     whose body length is known go through internal/h1's client, which
//     writes the request and reads the answer on the caller's goroutine;
//     only streamed bodies of unknown length (chunked uploads) use
//     net/http's Transport. Bodies are streamed both ways.
//
// A Request carries everything that varies between inference types, with
// defaults that are real-time inference's:
//
//   - Real-time InvokeEndpoint (internal/awsapi/runtime): Path
//     "/invocations", Options.Timeout (60 s), the router's size limits.
//   - Multi-model endpoints: Path "/models/{name}/invoke" (berth's built-in
//     servers) or the TargetModel header in Header (SageMaker's
//     multi-model containers); the picker will learn placement (which
//     instances hold the model) without the relay changing.
//   - Multi-container endpoints: Container names the container; Direct
//     mode sends one request to it, Serial mode sends one per container
//     in order, each hop pinned with Request.Instance to the instance of
//     the first (Stream.Instance), its answer the next hop's body.
//   - Asynchronous inference: a worker sends the queued request with
//     Invoke, Timeout up to 3,600 s, MaxResponseBytes the output limit,
//     and Variant.MaxConcurrency from MaxConcurrentInvocationsPerInstance,
//     so the backlog queues at the instances instead of failing.
//   - Batch transform: one Invoke per mini-batch with the job's
//     MaxPayloadInMB as MaxBodyBytes, its InvocationsTimeoutInSeconds as
//     Timeout and MaxConcurrentTransforms as MaxConcurrency.
//
// The router also sends copies of requests to shadow variants, hands
// sampled request/response pairs to data capture, and reports every
// invocation to a Metrics sink.
//
// The control plane publishes each endpoint's routing table with Publish
// (an atomic swap; readers take no lock) and calls Drain before it stops
// instances it no longer routes to. The runtime API relays client requests
// with Open; batch and async workers use the buffered Invoke.
package router

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-io/berth/internal/fault"
	"github.com/berth-io/berth/internal/h1"
)

// Instance is what the router needs of a running model server. Instances
// are compared by identity (==), so implementations should be pointers.
type Instance interface {
	// URL is the base URL of the instance's primary container (the only
	// one of a single-container model).
	URL() string
	Healthy() bool
}

// Containers is implemented by instances that run several containers (a
// multi-container model, each container on its own port). A request with
// Request.Container set goes to the named container's address; the
// router asks on every such request, so the runtime may move a container.
type Containers interface {
	// ContainerURL returns the base URL of the container with that
	// ContainerHostname, and false when the instance has none of that name.
	ContainerURL(name string) (url string, ok bool)
}

// Strategy picks between a variant's healthy instances
// (RoutingConfig.RoutingStrategy).
type Strategy int

const (
	// LeastOutstanding sends each request to the instance with the fewest
	// requests in flight (LEAST_OUTSTANDING_REQUESTS, berth's default).
	LeastOutstanding Strategy = iota
	// Random picks one of the healthy instances uniformly (RANDOM).
	Random
)

// Variant is one production variant of a published table.
type Variant struct {
	// Name is the VariantName. Several entries of a table may share a
	// name during a blue/green shift (the old and the new fleet).
	Name string
	// Weight is the variant's share of the traffic, relative to the other
	// entries of the same list.
	Weight    float64
	Instances []Instance
	Strategy  Strategy
	// MaxConcurrency, when positive, caps the requests in flight on each
	// instance of the variant (SageMaker's MaxConcurrentInvocationsPerInstance
	// for serverless and asynchronous inference): a request over the cap
	// waits, within its timeout, for a slot on the instance it was given.
	// 0 means no cap. Request.MaxConcurrency overrides it.
	MaxConcurrency int
}

// Endpoint is an endpoint's published routing table. The router does not
// change it; publish a new one instead.
type Endpoint struct {
	Name string
	// Variants receive the traffic, chosen by weight across all entries.
	Variants []*Variant
	// Shadows are ShadowProductionVariants: each successful request is
	// also sent, off the client's path, to one shadow chosen by weight.
	// Their answers only reach the metrics.
	Shadows []*Variant
	// Capture is the endpoint's data capture; nil means none.
	Capture Capturer
}

// Capturer records sampled invocations (DataCaptureConfig).
type Capturer interface {
	// Sample is called once per request, before anything is copied; false
	// means the request is not captured.
	Sample() bool
	// Capture receives a completed invocation. It must not block: the
	// implementation queues.
	Capture(ev CaptureEvent)
}

// CaptureEvent is one captured invocation.
type CaptureEvent struct {
	Endpoint, Variant, InferenceID string
	// EventID is the request id.
	EventID                                 string
	Time                                    time.Time
	RequestContentType, ResponseContentType string
	// RequestBody and ResponseBody are copies the capturer may keep.
	RequestBody, ResponseBody []byte
	CustomAttributes          string
}

// Metrics receives the router's measurements; internal/metrics implements
// it. The router asks for a VariantMetrics once per published variant.
type Metrics interface {
	Variant(endpoint, variant string) VariantMetrics
}

// VariantMetrics records the invocations of one variant of one endpoint.
type VariantMetrics interface {
	// Observe records one finished invocation: the instance it went to
	// (its URL, "" when none could be picked), the container's HTTP status
	// (0 when it gave none: timeout, broken connection) and the latencies.
	// A status of -1 means the client went away; it counts as an
	// invocation but not as an error.
	Observe(instance string, status int, model, overhead time.Duration)
	// ShadowDropped counts a copy not sent to this shadow variant because
	// too many shadow requests were already in flight.
	ShadowDropped()
}

// Options configures a Router. The zero value works.
type Options struct {
	// AccountID appears in not-found messages, as SageMaker's do.
	AccountID string
	// EndpointStatus, when set, tells whether an endpoint the router has
	// no table for exists (and in which status), so that invoking an
	// endpoint that is still Creating says so rather than "not found".
	EndpointStatus func(name string) (status string, ok bool)
	// Timeout bounds one buffered invocation, and the wait for the
	// response headers of a streamed one (SageMaker: 60 s).
	Timeout time.Duration
	// StreamTimeout bounds a whole response stream (default 8 minutes).
	StreamTimeout time.Duration
	// MaxResponseBytes bounds a model's buffered answer (default 64 MiB).
	MaxResponseBytes int64
	// MaxShadowInFlight bounds the shadow requests in flight; copies past
	// it are dropped and counted (default 64).
	MaxShadowInFlight int
	// MaxConnsPerInstance bounds the keep-alive connections kept idle per
	// instance; it should be at least the expected concurrency
	// (default 1024).
	MaxConnsPerInstance int
	// Metrics receives measurements; nil records nothing.
	Metrics Metrics
	// Now returns the current time; time.Now by default.
	Now func() time.Time
}

// Router relays invocations to published endpoints.
type Router struct {
	opts Options
	// upstream sends requests whose body length is known (all buffered
	// bodies and most streamed ones) on the caller's goroutine; transport
	// only carries streamed bodies of unknown length (chunked uploads).
	upstream  *h1.Client
	transport *http.Transport

	tables atomic.Pointer[map[string]*table] // copy-on-write, by name and lower-case name

	mu     sync.Mutex              // serialises writers of tables and states
	states map[Instance]*instState // outstanding-request counters by instance identity
	byName map[string]*table       // the writers' copy of tables, by lower-case name

	shadowSem chan struct{}
	shadowWG  sync.WaitGroup
	closing   context.Context
	close     context.CancelFunc
	abandon   atomic.Bool // set by Abandon
	chunked   atomic.Bool // set once the Transport carried a request
	// abandonCtx is cancelled by Abandon: it interrupts invocations that go
	// through the Transport (the h1 client is interrupted by its Abort).
	abandonCtx    context.Context
	abandonCancel context.CancelFunc
}

// New returns an empty Router.
func New(opts Options) *Router {
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.StreamTimeout <= 0 {
		opts.StreamTimeout = 8 * time.Minute
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 64 << 20
	}
	if opts.MaxShadowInFlight <= 0 {
		opts.MaxShadowInFlight = 64
	}
	if opts.MaxConnsPerInstance <= 0 {
		opts.MaxConnsPerInstance = 1024
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	transport := &http.Transport{
		DialContext: (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		// Instances are local servers reached over plain HTTP/1.1: keep
		// as many connections alive as requests run at once, so no request
		// pays for a dial, and never compress.
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   opts.MaxConnsPerInstance,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     false,
		WriteBufferSize:       32 << 10,
		ReadBufferSize:        32 << 10,
		ExpectContinueTimeout: 0,
	}
	closing, cancel := context.WithCancel(context.Background())
	r := &Router{
		opts: opts,
		upstream: h1.NewClient(h1.ClientOptions{
			MaxIdlePerHost: opts.MaxConnsPerInstance,
			DialTimeout:    2 * time.Second,
		}),
		transport: transport,
		states:    map[Instance]*instState{},
		byName:    map[string]*table{},
		shadowSem: make(chan struct{}, opts.MaxShadowInFlight),
		closing:   closing,
		close:     cancel,
	}
	r.abandonCtx, r.abandonCancel = context.WithCancel(context.Background())
	empty := map[string]*table{}
	r.tables.Store(&empty)
	return r
}

// errAbandoned is the error of invocations that Abandon cut short.
var errAbandoned = fault.New(fault.Unavailable, "The server is shutting down and abandoned the invocation; retry it.")

// Abandon makes every invocation in progress fail at once, and every later
// one: for a shutdown whose grace period ran out. Close must still be
// called.
func (r *Router) Abandon() {
	r.abandon.Store(true)
	r.abandonCancel()
	r.close()
	r.upstream.Abort()
}

// Close stops shadow requests, waits for them and releases pooled
// connections.
func (r *Router) Close() {
	r.close()
	r.shadowWG.Wait()
	r.upstream.CloseIdleConnections()
	r.transport.CloseIdleConnections()
}

// table is the router's immutable view of a published Endpoint.
type table struct {
	ep       *Endpoint
	variants []*variant
	shadows  []*variant
	total    float64 // sum of the variants' weights
	shadowW  float64 // sum of the shadows' weights
}

// variant is a published Variant with its instances' counters.
type variant struct {
	name     string
	weight   float64
	strategy Strategy
	maxConc  int
	insts    []*instState
	metrics  VariantMetrics
	next     atomic.Uint32
}

// instState is the router's state of one instance, shared by every table
// that routes to it.
type instState struct {
	inst Instance
	addr atomic.Pointer[instAddr] // parsed from the last URL() seen
	// containers caches the addresses of the instance's other
	// containers by name (copy-on-write).
	containers atomic.Pointer[map[string]*instAddr]
	// inflight counts the requests sent to the instance or waiting for a
	// slot on it: least-outstanding picking and Drain read it.
	inflight atomic.Int64
	retired  atomic.Bool // set by Drain: take no new requests
	// moved is called with the old address when the instance's URL
	// changes; nil in tests that build states by hand.
	moved func(oldDial string)

	// Slots of the cap on requests in flight (see takeSlot). Only capped
	// requests take one, so uncapped traffic never touches slotMu.
	slotMu  sync.Mutex
	running int           // capped requests holding a slot
	waiters []*slotWaiter // capped requests waiting, in arrival order
}

// Publish makes ep the routing table of its endpoint, replacing any other.
// Outstanding-request counters follow the Instance, so an instance kept in
// the new table keeps its count.
func (r *Router) Publish(ep *Endpoint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := &table{ep: ep}
	for _, v := range ep.Variants {
		t.variants = append(t.variants, r.buildVariant(ep.Name, v))
		t.total += max(v.Weight, 0)
	}
	for _, v := range ep.Shadows {
		t.shadows = append(t.shadows, r.buildVariant(ep.Name, v))
		t.shadowW += max(v.Weight, 0)
	}
	r.byName[strings.ToLower(ep.Name)] = t
	r.storeTables()
}

func (r *Router) buildVariant(endpoint string, v *Variant) *variant {
	out := &variant{name: v.Name, weight: max(v.Weight, 0), strategy: v.Strategy, maxConc: max(v.MaxConcurrency, 0)}
	if r.opts.Metrics != nil {
		out.metrics = r.opts.Metrics.Variant(endpoint, v.Name)
	}
	for _, inst := range v.Instances {
		st := r.states[inst]
		if st == nil {
			st = &instState{inst: inst, moved: r.instanceMoved}
			r.states[inst] = st
		}
		st.retired.Store(false)
		out.insts = append(out.insts, st)
	}
	return out
}

// storeTables publishes the writers' copy; r.mu must be held.
func (r *Router) storeTables() {
	m := make(map[string]*table, 2*len(r.byName))
	for lower, t := range r.byName {
		m[lower] = t
		m[t.ep.Name] = t
	}
	r.tables.Store(&m)
}

// instanceMoved closes the connections to an instance's old address.
func (r *Router) instanceMoved(oldDial string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeConns([]string{oldDial})
}

// Remove stops routing to an endpoint.
func (r *Router) Remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byName, strings.ToLower(name))
	r.storeTables()
	r.pruneLocked(nil)
}

// pruneLocked forgets the counters of idle instances that no table routes
// to; when only is non-nil, just those among only. r.mu must be held.
func (r *Router) pruneLocked(only []Instance) {
	used := map[*instState]bool{}
	for _, t := range r.byName {
		for _, vs := range [][]*variant{t.variants, t.shadows} {
			for _, v := range vs {
				for _, st := range v.insts {
					used[st] = true
				}
			}
		}
	}
	var gone []string
	consider := only
	if consider == nil {
		for inst := range r.states {
			consider = append(consider, inst)
		}
	}
	for _, inst := range consider {
		if st := r.states[inst]; st != nil && !used[st] && st.inflight.Load() == 0 {
			delete(r.states, inst)
			gone = st.appendDials(gone)
		}
	}
	r.closeConns(gone)
}

// closeConns closes the pooled connections to addresses of instances the
// router no longer knows, unless another instance now listens on the same
// address (a port reused). The connections of a stopped instance would
// otherwise stay open until the next request to that address, which may
// never come. r.mu must be held.
func (r *Router) closeConns(gone []string) {
	if len(gone) == 0 {
		return
	}
	inUse := map[string]bool{}
	var dials []string
	for _, st := range r.states {
		dials = st.appendDials(dials[:0])
		for _, d := range dials {
			inUse[d] = true
		}
	}
	closed := false
	for _, dial := range gone {
		if !inUse[dial] {
			r.upstream.CloseHost(dial)
			closed = true
		}
	}
	// net/http's Transport cannot close one host's connections; closing
	// its idle ones costs the other instances a dial on their next chunked
	// request, which is rare.
	if closed && r.chunked.Load() {
		r.transport.CloseIdleConnections()
	}
}

// Drain waits until none of insts has a request in flight. From the call
// on, those instances take no new request even from a table that still
// lists them (a later Publish that lists one brings it back).
func (r *Router) Drain(ctx context.Context, insts []Instance) error {
	r.mu.Lock()
	var states []*instState
	for _, inst := range insts {
		if st := r.states[inst]; st != nil {
			st.retired.Store(true)
			states = append(states, st)
		}
	}
	r.mu.Unlock()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		busy := 0
		for _, st := range states {
			if st.inflight.Load() > 0 {
				busy++
			}
		}
		if busy == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain: %d instances still busy: %w", busy, ctx.Err())
		case <-tick.C:
		}
	}
	r.mu.Lock()
	r.pruneLocked(insts)
	r.mu.Unlock()
	return nil
}

func (r *Router) lookup(name string) *table {
	m := *r.tables.Load()
	if t, ok := m[name]; ok {
		return t
	}
	return m[strings.ToLower(name)]
}

// Outstanding returns the requests in flight on inst (for tests and
// diagnostics).
func (r *Router) Outstanding(inst Instance) int64 {
	r.mu.Lock()
	st := r.states[inst]
	r.mu.Unlock()
	if st == nil {
		return 0
	}
	return st.inflight.Load()
}
