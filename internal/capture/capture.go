// Package capture writes SageMaker data capture: a sampled copy of an
// endpoint's requests and responses, as JSON Lines in SageMaker's capture
// record layout, under DestinationS3Uri/<endpoint>/<variant>/yyyy/mm/dd/hh/.
// Records are queued and written in batches by a background goroutine, so
// capture never slows an invocation; when the queue is full, records are
// dropped and counted rather than blocking.
package capture

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/berth-io/berth/internal/objstore"
	"github.com/berth-io/berth/internal/router"
)

// Config is an endpoint's DataCaptureConfig, as berth applies it.
type Config struct {
	// Destination is where capture files go.
	Destination objstore.S3URI
	// SamplingPercentage is the share of requests captured, 0 to 100.
	SamplingPercentage int
	// Input and Output say which halves of an invocation are recorded.
	Input, Output bool
	// CSVContentTypes and JSONContentTypes name the content types whose
	// data is written as text rather than base64.
	CSVContentTypes, JSONContentTypes []string
}

// Options tunes a Writer.
type Options struct {
	// FlushInterval is the longest a record waits before it is written.
	FlushInterval time.Duration
	// MaxBatch is the most records written to one file.
	MaxBatch int
	// QueueSize bounds the records waiting to be written.
	QueueSize int
	// Now returns the current time; time.Now by default.
	Now func() time.Time
	// Ticker returns a channel that ticks every d and a function that
	// stops it; a time.Ticker by default. Tests tick it by hand to flush
	// without waiting for FlushInterval.
	Ticker func(d time.Duration) (ticks <-chan time.Time, stop func())
	Logger *slog.Logger
}

// Writer captures the invocations of one endpoint.
type Writer struct {
	endpoint string
	cfg      Config
	objects  objstore.Store
	opts     Options
	log      *slog.Logger

	queue   chan router.CaptureEvent
	dropped atomic.Int64
	written atomic.Int64

	stopOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

var _ router.Capturer = (*Writer)(nil)

// New starts a Writer for an endpoint. Close flushes and stops it.
func New(endpoint string, cfg Config, objects objstore.Store, opts Options) *Writer {
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = 5 * time.Second
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 10000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Ticker == nil {
		opts.Ticker = func(d time.Duration) (<-chan time.Time, func()) {
			t := time.NewTicker(d)
			return t.C, t.Stop
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{
		endpoint: endpoint,
		cfg:      cfg,
		objects:  objects,
		opts:     opts,
		log:      opts.Logger.With("component", "capture", "endpoint", endpoint),
		queue:    make(chan router.CaptureEvent, opts.QueueSize),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go w.run()
	return w
}

// Sample decides whether one request is captured.
func (w *Writer) Sample() bool {
	switch p := w.cfg.SamplingPercentage; {
	case p <= 0:
		return false
	case p >= 100:
		return true
	default:
		return mrand.IntN(100) < p
	}
}

// Capture queues an event; it never blocks.
func (w *Writer) Capture(ev router.CaptureEvent) {
	select {
	case w.queue <- ev:
	default:
		w.dropped.Add(1)
	}
}

// Dropped returns how many events were dropped because the queue was full.
func (w *Writer) Dropped() int64 { return w.dropped.Load() }

// Written returns how many records were written.
func (w *Writer) Written() int64 { return w.written.Load() }

// Close writes what is queued and stops the writer.
func (w *Writer) Close() {
	w.stopOnce.Do(func() { close(w.stop) })
	<-w.done
}

func (w *Writer) run() {
	defer close(w.done)
	ticks, stop := w.opts.Ticker(w.opts.FlushInterval)
	defer stop()
	var batch []router.CaptureEvent
	flush := func() {
		if len(batch) > 0 {
			w.write(batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case ev := <-w.queue:
			batch = append(batch, ev)
			if len(batch) >= w.opts.MaxBatch {
				flush()
			}
		case <-ticks:
			flush()
		case <-w.stop:
			for {
				select {
				case ev := <-w.queue:
					batch = append(batch, ev)
				default:
					flush()
					return
				}
			}
		}
	}
}

// write stores a batch as one JSON Lines object per variant and hour.
func (w *Writer) write(batch []router.CaptureEvent) {
	groups := map[string]*bytes.Buffer{}
	var order []string
	for _, ev := range batch {
		t := ev.Time.UTC()
		if t.IsZero() {
			t = w.opts.Now().UTC()
		}
		key := fmt.Sprintf("%s/%s/%s", w.endpoint, ev.Variant, t.Format("2006/01/02/15"))
		buf, ok := groups[key]
		if !ok {
			buf = &bytes.Buffer{}
			groups[key] = buf
			order = append(order, key)
		}
		line, err := json.Marshal(w.record(ev, t))
		if err != nil {
			w.log.Error("encode capture record", "err", err)
			continue
		}
		buf.Write(line)
		buf.WriteByte('\n')
	}
	for _, key := range order {
		buf := groups[key]
		name := joinKey(w.cfg.Destination.Key, key, fileName(w.opts.Now()))
		n := int64(bytes.Count(buf.Bytes(), []byte{'\n'}))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := w.objects.Put(ctx, w.cfg.Destination.Bucket, name, bytes.NewReader(buf.Bytes()), objstore.PutOptions{ContentType: "application/jsonlines"})
		cancel()
		if err != nil {
			w.dropped.Add(n)
			w.log.Error("write capture file", "bucket", w.cfg.Destination.Bucket, "key", name, "err", err)
			continue
		}
		w.written.Add(n)
	}
}

func joinKey(parts ...string) string {
	var kept []string
	for _, p := range parts {
		if p = strings.Trim(p, "/"); p != "" {
			kept = append(kept, p)
		}
	}
	return strings.Join(kept, "/")
}

// fileName is unique and sorts by time, like SageMaker's
// <minute>-<second>-<millis>-<uuid>.jsonl names.
func fileName(now time.Time) string {
	var b [8]byte
	rand.Read(b[:])
	now = now.UTC()
	return fmt.Sprintf("%02d-%02d-%03d-%s.jsonl", now.Minute(), now.Second(), now.Nanosecond()/1e6, hex.EncodeToString(b[:]))
}

// Record is one line of a capture file, in SageMaker's layout.
type Record struct {
	CaptureData   CaptureData   `json:"captureData"`
	EventMetadata EventMetadata `json:"eventMetadata"`
	EventVersion  string        `json:"eventVersion"`
}

// CaptureData holds the captured halves of an invocation.
type CaptureData struct {
	EndpointInput  *Payload `json:"endpointInput,omitempty"`
	EndpointOutput *Payload `json:"endpointOutput,omitempty"`
}

// Payload is one captured body.
type Payload struct {
	ObservedContentType string `json:"observedContentType"`
	Mode                string `json:"mode"`
	Data                string `json:"data"`
	Encoding            string `json:"encoding"`
}

// EventMetadata identifies the invocation.
type EventMetadata struct {
	EventID          string   `json:"eventId"`
	InferenceID      string   `json:"inferenceId,omitempty"`
	InferenceTime    string   `json:"inferenceTime"`
	CustomAttributes []string `json:"customAttributes,omitempty"`
}

func (w *Writer) record(ev router.CaptureEvent, t time.Time) Record {
	r := Record{
		EventMetadata: EventMetadata{EventID: ev.EventID, InferenceID: ev.InferenceID, InferenceTime: t.Format("2006-01-02T15:04:05Z")},
		EventVersion:  "0",
	}
	if ev.CustomAttributes != "" {
		r.EventMetadata.CustomAttributes = []string{ev.CustomAttributes}
	}
	if w.cfg.Input {
		r.CaptureData.EndpointInput = w.payload("INPUT", ev.RequestContentType, ev.RequestBody)
	}
	if w.cfg.Output {
		r.CaptureData.EndpointOutput = w.payload("OUTPUT", ev.ResponseContentType, ev.ResponseBody)
	}
	return r
}

func (w *Writer) payload(mode, contentType string, body []byte) *Payload {
	p := &Payload{ObservedContentType: contentType, Mode: mode}
	switch {
	case !utf8.Valid(body):
		p.Encoding, p.Data = "BASE64", base64.StdEncoding.EncodeToString(body)
	case matches(contentType, w.cfg.CSVContentTypes, "text/csv"):
		p.Encoding, p.Data = "CSV", string(body)
	case matches(contentType, w.cfg.JSONContentTypes, "application/json") && json.Valid(body):
		p.Encoding, p.Data = "JSON", string(body)
	default:
		p.Encoding, p.Data = "BASE64", base64.StdEncoding.EncodeToString(body)
	}
	return p
}

// matches reports whether a content type (parameters ignored) is one of
// the configured types, or the default when none are configured.
func matches(contentType string, configured []string, fallback string) bool {
	base, _, _ := strings.Cut(contentType, ";")
	base = strings.TrimSpace(strings.ToLower(base))
	if len(configured) == 0 {
		return base == fallback
	}
	for _, c := range configured {
		if strings.EqualFold(strings.TrimSpace(c), base) {
			return true
		}
	}
	return false
}
