// Package metrics exposes berth's Prometheus metrics at GET /metrics, named
// after the SageMaker CloudWatch metrics they stand for. It owns its
// registry (no global state), so several servers can run in one process.
//
// Naming scheme: berth_ + the CloudWatch metric name in snake case; counters
// end in _total and histograms carry their unit, as Prometheus asks.
// Every series has the labels endpoint (EndpointName) and variant
// (VariantName; a shadow variant reports under its own name).
//
//	CloudWatch (AWS/SageMaker)  Prometheus
//	Invocations                 berth_invocations_total{endpoint,variant}
//	InvocationsPerInstance      berth_invocations_per_instance_total{endpoint,variant,instance}
//	Invocation4XXErrors         berth_invocation_4xx_errors_total{endpoint,variant}
//	Invocation5XXErrors         berth_invocation_5xx_errors_total{endpoint,variant}
//	InvocationModelErrors       berth_invocation_model_errors_total{endpoint,variant}
//	ModelLatency                berth_model_latency_microseconds{endpoint,variant} (histogram)
//	OverheadLatency             berth_overhead_latency_microseconds{endpoint,variant} (histogram)
//	(berth only)                berth_shadow_dropped_total{endpoint,variant}
//
// InvocationsPerInstance counts the invocations each instance served (the
// instance label is its host:port); SageMaker's value, invocations divided
// by the instance count, is avg by (endpoint, variant) of its rate.
// Invocation4XXErrors and Invocation5XXErrors count the model's 4xx and
// 5xx answers; a timeout or a broken response counts as 5XX, as SageMaker
// reports them. Latencies are in microseconds, as CloudWatch reports them:
// ModelLatency runs from sending the request to the container until its
// response is complete, OverheadLatency is the rest of the time berth
// spent on the request.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/berth-io/berth/internal/router"
)

// latencyBuckets spans 25 µs to 60 s, in microseconds.
var latencyBuckets = []float64{
	25, 50, 100, 250, 500,
	1e3, 2.5e3, 5e3, 10e3, 25e3, 50e3, 100e3, 250e3, 500e3,
	1e6, 2.5e6, 5e6, 10e6, 30e6, 60e6,
}

// Metrics holds berth's collectors and their registry.
type Metrics struct {
	reg *prometheus.Registry

	invocations  *prometheus.CounterVec
	perInstance  *prometheus.CounterVec
	errors4xx    *prometheus.CounterVec
	errors5xx    *prometheus.CounterVec
	modelErrors  *prometheus.CounterVec
	modelLatency *prometheus.HistogramVec
	overhead     *prometheus.HistogramVec
	shadowDrops  *prometheus.CounterVec
}

var _ router.Metrics = (*Metrics)(nil)

// New returns a registry holding berth's metrics and the Go runtime's.
func New() *Metrics {
	labels := []string{"endpoint", "variant"}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_invocations_total",
			Help: "Requests sent to a model (CloudWatch Invocations).",
		}, labels),
		perInstance: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_invocations_per_instance_total",
			Help: "Requests sent to each instance of a model (CloudWatch InvocationsPerInstance is their average).",
		}, []string{"endpoint", "variant", "instance"}),
		errors4xx: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_invocation_4xx_errors_total",
			Help: "Requests the model answered with a 4xx status (CloudWatch Invocation4XXErrors).",
		}, labels),
		errors5xx: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_invocation_5xx_errors_total",
			Help: "Requests the model answered with a 5xx status, did not answer in time, or broke off (CloudWatch Invocation5XXErrors).",
		}, labels),
		modelErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_invocation_model_errors_total",
			Help: "Requests that did not get a 2xx answer from the model (CloudWatch InvocationModelErrors).",
		}, labels),
		modelLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_model_latency_microseconds",
			Help:    "Time the model took to answer, as seen by berth, in microseconds (CloudWatch ModelLatency).",
			Buckets: latencyBuckets,
		}, labels),
		overhead: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "berth_overhead_latency_microseconds",
			Help:    "Time berth added to a request beyond the model's, in microseconds (CloudWatch OverheadLatency).",
			Buckets: latencyBuckets,
		}, labels),
		shadowDrops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "berth_shadow_dropped_total",
			Help: "Request copies not sent to a shadow variant because too many were in flight.",
		}, labels),
	}
	m.reg.MustRegister(m.invocations, m.perInstance, m.errors4xx, m.errors5xx, m.modelErrors,
		m.modelLatency, m.overhead, m.shadowDrops,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry, for other packages' collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Variant returns the recorder of one variant of one endpoint, with its
// series resolved once so recording costs no label lookups.
func (m *Metrics) Variant(endpoint, variant string) router.VariantMetrics {
	return &Variant{
		m:            m,
		endpoint:     endpoint,
		variant:      variant,
		invocations:  m.invocations.WithLabelValues(endpoint, variant),
		errors4xx:    m.errors4xx.WithLabelValues(endpoint, variant),
		errors5xx:    m.errors5xx.WithLabelValues(endpoint, variant),
		modelErrors:  m.modelErrors.WithLabelValues(endpoint, variant),
		modelLatency: m.modelLatency.WithLabelValues(endpoint, variant),
		overhead:     m.overhead.WithLabelValues(endpoint, variant),
		shadowDrops:  m.shadowDrops.WithLabelValues(endpoint, variant),
	}
}

// Variant records the invocations of one variant.
type Variant struct {
	m                 *Metrics
	endpoint, variant string

	invocations, errors4xx, errors5xx, modelErrors, shadowDrops prometheus.Counter
	modelLatency, overhead                                      prometheus.Observer

	// instances: instance label → prometheus.Counter. A sync.Map: read on
	// every invocation by every core, written once per instance.
	instances sync.Map
}

// Observe records one invocation; see router.VariantMetrics.
func (v *Variant) Observe(instance string, status int, model, overhead time.Duration) {
	v.invocations.Inc()
	if instance != "" {
		v.instance(instance).Inc()
	}
	switch {
	case status >= 200 && status < 300, status < 0:
	case status >= 400 && status < 500:
		v.errors4xx.Inc()
		v.modelErrors.Inc()
	default:
		v.errors5xx.Inc()
		v.modelErrors.Inc()
	}
	if model > 0 {
		v.modelLatency.Observe(float64(model.Microseconds()))
	}
	if overhead < 0 {
		overhead = 0
	}
	v.overhead.Observe(float64(overhead.Microseconds()))
}

// ShadowDropped counts a request copy not sent to this shadow variant.
func (v *Variant) ShadowDropped() { v.shadowDrops.Inc() }

func (v *Variant) instance(name string) prometheus.Counter {
	if c, ok := v.instances.Load(name); ok {
		return c.(prometheus.Counter)
	}
	c, _ := v.instances.LoadOrStore(name, v.m.perInstance.WithLabelValues(v.endpoint, v.variant, name))
	return c.(prometheus.Counter)
}
