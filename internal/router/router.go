// Package router carries invocations to model instances: it picks a
// production variant by weight (or the one the client targets), picks a
// healthy instance of it, and relays the request over pooled keep-alive
// connections. The control plane publishes each endpoint's running
// instances here; the runtime API, batch and async workers invoke through it.
package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berth-io/berth/internal/fault"
)

// Instance is what the router needs of a running model server.
type Instance interface {
	URL() string
	Healthy() bool
}

// Variant is one production variant's live routing state.
type Variant struct {
	Name      string
	Weight    float64
	Instances []Instance
	next      atomic.Uint64
}

// Endpoint is an endpoint's published routing table. It is replaced, never
// changed, so readers need no lock.
type Endpoint struct {
	Name     string
	Variants []*Variant
}

// Request is one invocation.
type Request struct {
	Body             []byte
	ContentType      string
	Accept           string
	CustomAttributes string
	TargetVariant    string
	InferenceID      string
}

// Response is a model's successful answer.
type Response struct {
	Body             []byte
	ContentType      string
	CustomAttributes string
	Variant          string
}

// ModelError reports that the container answered with a non-2xx status,
// or failed mid-response.
type ModelError struct {
	Variant        string
	OriginalStatus int
	OriginalBody   string
}

func (e *ModelError) Error() string {
	class := "server"
	if e.OriginalStatus >= 400 && e.OriginalStatus < 500 {
		class = "client"
	}
	return fmt.Sprintf("Received %s error (%d) from model in variant %s with message %q. See the instance logs in the berth data directory for more information.",
		class, e.OriginalStatus, e.Variant, e.OriginalBody)
}

// Router relays invocations to published endpoints.
type Router struct {
	mu        sync.RWMutex
	endpoints map[string]*Endpoint // by lower-case name
	client    *http.Client
	account   string
	timeout   time.Duration
	maxResp   int64
}

// Options configures a Router.
type Options struct {
	// AccountID appears in not-found messages, as SageMaker's do.
	AccountID string
	// Timeout bounds one invocation (SageMaker: 60 s).
	Timeout time.Duration
	// MaxResponseBytes bounds a model's answer.
	MaxResponseBytes int64
}

// New returns an empty Router.
func New(opts Options) *Router {
	if opts.Timeout <= 0 {
		opts.Timeout = 60 * time.Second
	}
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = 64 << 20
	}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &Router{
		endpoints: map[string]*Endpoint{},
		client:    &http.Client{Transport: transport},
		account:   opts.AccountID,
		timeout:   opts.Timeout,
		maxResp:   opts.MaxResponseBytes,
	}
}

// Publish makes ep the routing table of its endpoint, replacing any other.
func (r *Router) Publish(ep *Endpoint) {
	r.mu.Lock()
	r.endpoints[strings.ToLower(ep.Name)] = ep
	r.mu.Unlock()
}

// Remove stops routing to an endpoint.
func (r *Router) Remove(name string) {
	r.mu.Lock()
	delete(r.endpoints, strings.ToLower(name))
	r.mu.Unlock()
}

// Lookup returns the published table of an endpoint.
func (r *Router) Lookup(name string) (*Endpoint, bool) {
	r.mu.RLock()
	ep, ok := r.endpoints[strings.ToLower(name)]
	r.mu.RUnlock()
	return ep, ok
}

// Close releases pooled connections.
func (r *Router) Close() { r.client.CloseIdleConnections() }

// Invoke sends req to the endpoint and returns the model's answer.
func (r *Router) Invoke(ctx context.Context, endpoint string, req Request) (*Response, error) {
	ep, ok := r.Lookup(endpoint)
	if !ok {
		return nil, fault.New(fault.NotFound, "Endpoint %s of account %s not found.", endpoint, r.account)
	}
	v, err := pickVariant(ep, req.TargetVariant)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	// A request that could not connect was never seen by the model, so it
	// is safe to try once more on another instance.
	var lastErr error
	for attempt := 0; attempt < 2; attempt++ {
		inst := pickInstance(v)
		if inst == nil {
			return nil, fault.New(fault.Unavailable, "No healthy instance of variant %s of endpoint %s can take the request; retry later.", v.Name, ep.Name)
		}
		resp, err := r.send(ctx, inst, v, req)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		if !isConnectError(err) {
			break
		}
	}
	return nil, asFault(lastErr)
}

func pickVariant(ep *Endpoint, target string) (*Variant, error) {
	if target != "" {
		for _, v := range ep.Variants {
			if strings.EqualFold(v.Name, target) {
				return v, nil
			}
		}
		return nil, fault.New(fault.Invalid, "Endpoint %s does not have a variant named %s.", ep.Name, target)
	}
	var total float64
	for _, v := range ep.Variants {
		total += v.Weight
	}
	if total <= 0 {
		return nil, fault.New(fault.Unavailable, "All variants of endpoint %s have weight 0; set a weight with UpdateEndpointWeightsAndCapacities or name a TargetVariant.", ep.Name)
	}
	x := rand.Float64() * total
	for _, v := range ep.Variants {
		if x < v.Weight {
			return v, nil
		}
		x -= v.Weight
	}
	return ep.Variants[len(ep.Variants)-1], nil
}

// pickInstance returns the next healthy instance round-robin, or nil.
func pickInstance(v *Variant) Instance {
	n := len(v.Instances)
	start := v.next.Add(1)
	for i := 0; i < n; i++ {
		inst := v.Instances[(start+uint64(i))%uint64(n)]
		if inst.Healthy() {
			return inst
		}
	}
	return nil
}

func (r *Router) send(ctx context.Context, inst Instance, v *Variant, req Request) (*Response, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, inst.URL()+"/invocations", bytes.NewReader(req.Body))
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if req.ContentType != "" {
		hreq.Header.Set("Content-Type", req.ContentType)
	}
	if req.Accept != "" {
		hreq.Header.Set("Accept", req.Accept)
	}
	if req.CustomAttributes != "" {
		hreq.Header.Set("X-Amzn-SageMaker-Custom-Attributes", req.CustomAttributes)
	}
	if req.InferenceID != "" {
		hreq.Header.Set("X-Amzn-SageMaker-Inference-Id", req.InferenceID)
	}
	hresp, err := r.client.Do(hreq)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fault.Wrap(fault.Timeout, err, "Model of variant %s did not respond within %s.", v.Name, r.timeout)
		}
		return nil, &connError{err: err, variant: v.Name}
	}
	defer hresp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(hresp.Body, r.maxResp+1))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fault.Wrap(fault.Timeout, err, "Model of variant %s did not respond within %s.", v.Name, r.timeout)
		}
		return nil, &ModelError{Variant: v.Name, OriginalStatus: hresp.StatusCode, OriginalBody: "response ended early: " + err.Error()}
	}
	if int64(len(body)) > r.maxResp {
		return nil, &ModelError{Variant: v.Name, OriginalStatus: hresp.StatusCode, OriginalBody: fmt.Sprintf("response larger than %d bytes", r.maxResp)}
	}
	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		return nil, &ModelError{Variant: v.Name, OriginalStatus: hresp.StatusCode, OriginalBody: string(body)}
	}
	return &Response{
		Body:             body,
		ContentType:      hresp.Header.Get("Content-Type"),
		CustomAttributes: hresp.Header.Get("X-Amzn-SageMaker-Custom-Attributes"),
		Variant:          v.Name,
	}, nil
}

// connError is a failure to reach an instance before any byte was sent.
type connError struct {
	err     error
	variant string
}

func (e *connError) Error() string { return "connect to instance: " + e.err.Error() }
func (e *connError) Unwrap() error { return e.err }

func isConnectError(err error) bool {
	var ce *connError
	if !errors.As(err, &ce) {
		return false
	}
	var op *net.OpError
	return errors.As(ce.err, &op) && op.Op == "dial"
}

// asFault turns a connError left after retries into an Unavailable fault.
func asFault(err error) error {
	var ce *connError
	if errors.As(err, &ce) {
		return fault.Wrap(fault.Unavailable, err, "Could not reach an instance of variant %s; retry later.", ce.variant)
	}
	return err
}
