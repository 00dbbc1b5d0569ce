package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/fault"
	"github.com/berth-io/berth/internal/testutil"
)

// testInstance is an Instance over an httptest server.
type testInstance struct {
	url       string
	unhealthy atomic.Bool
}

func (i *testInstance) URL() string   { return i.url }
func (i *testInstance) Healthy() bool { return !i.unhealthy.Load() }

// backend starts a model server answering with h.
func backend(t testing.TB, h http.HandlerFunc) *testInstance {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &testInstance{url: srv.URL}
}

// named answers with its name.
func named(t testing.TB, name string) *testInstance {
	return backend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, name)
	})
}

func echo(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	if ca := r.Header.Get("X-Amzn-SageMaker-Custom-Attributes"); ca != "" {
		w.Header().Set("X-Amzn-SageMaker-Custom-Attributes", "echo:"+ca)
	}
	io.Copy(w, r.Body)
}

func newRouter(t testing.TB, opts Options) *Router {
	t.Helper()
	r := New(opts)
	t.Cleanup(r.Close)
	return r
}

func one(name string, insts ...Instance) *Endpoint {
	return &Endpoint{Name: name, Variants: []*Variant{{Name: "AllTraffic", Weight: 1, Instances: insts}}}
}

func invoke(t testing.TB, r *Router, endpoint string, req Request) string {
	t.Helper()
	resp, err := r.Invoke(context.Background(), endpoint, req)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	return string(resp.Body)
}

func TestInvokeHeadersBothWays(t *testing.T) {
	var got http.Header
	var host string
	var length int64
	inst := backend(t, func(w http.ResponseWriter, r *http.Request) {
		got, host, length = r.Header.Clone(), r.Host, r.ContentLength
		echo(w, r)
	})
	r := newRouter(t, Options{})
	r.Publish(one("ep", inst))
	resp, err := r.Invoke(context.Background(), "EP", Request{
		Body: []byte("hi"), ContentType: "text/csv", Accept: "application/json",
		CustomAttributes: "trace=1", InferenceID: "inf-1",
		Header: []Field{{"X-Amzn-SageMaker-Target-Model", "m.tar.gz"}, {"content-length", "99"}, {"Host", "evil"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.Body) != "hi" || resp.ContentType != "text/csv" || resp.CustomAttributes != "echo:trace=1" || resp.Variant != "AllTraffic" {
		t.Errorf("response = %+v", resp)
	}
	for k, want := range map[string]string{"Content-Type": "text/csv", "Accept": "application/json",
		"X-Amzn-Sagemaker-Custom-Attributes": "trace=1", "X-Amzn-Sagemaker-Inference-Id": "inf-1",
		"X-Amzn-Sagemaker-Target-Model": "m.tar.gz"} {
		if got.Get(k) != want {
			t.Errorf("model got %s = %q, want %q", k, got.Get(k), want)
		}
	}
	// Framing headers among the extra ones are not forwarded.
	if host == "evil" || length != 2 {
		t.Errorf("model got Host %q, Content-Length %d", host, length)
	}
}

func TestWeightsConverge(t *testing.T) {
	r := newRouter(t, Options{})
	r.Publish(&Endpoint{Name: "ep", Variants: []*Variant{
		{Name: "a", Weight: 3, Instances: []Instance{named(t, "a")}},
		// Two entries of one name (a blue/green shift) share its traffic.
		{Name: "b", Weight: 0.5, Instances: []Instance{named(t, "b")}},
		{Name: "b", Weight: 0.5, Instances: []Instance{named(t, "b")}},
	}})
	counts := map[string]int{}
	const n = 4000
	for range n {
		counts[invoke(t, r, "ep", Request{})]++
	}
	if share := float64(counts["a"]) / n; share < 0.72 || share > 0.78 {
		t.Errorf("variant a got %.3f of the traffic, want 0.75 (counts %v)", share, counts)
	}
	for range 20 {
		if got := invoke(t, r, "ep", Request{TargetVariant: "B"}); got != "b" {
			t.Fatalf("TargetVariant B answered by %s", got)
		}
	}
	_, err := r.Invoke(context.Background(), "ep", Request{TargetVariant: "nope"})
	if fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), "nope") {
		t.Errorf("unknown variant: %v", err)
	}
	_, err = r.Invoke(context.Background(), "missing", Request{})
	if fault.KindOf(err) != fault.NotFound {
		t.Errorf("unknown endpoint: %v", err)
	}
}

// slowFast returns a slow and a fast instance and counters of the
// requests each received.
func slowFast(t *testing.T) (slow, fast *testInstance, slowN, fastN *atomic.Int64) {
	slowN, fastN = new(atomic.Int64), new(atomic.Int64)
	slow = backend(t, func(w http.ResponseWriter, r *http.Request) {
		slowN.Add(1)
		time.Sleep(50 * time.Millisecond)
		io.WriteString(w, "slow")
	})
	fast = backend(t, func(w http.ResponseWriter, r *http.Request) {
		fastN.Add(1)
		io.WriteString(w, "fast")
	})
	return
}

func TestLeastOutstandingBeatsRandom(t *testing.T) {
	share := func(strategy Strategy) float64 {
		slow, fast, slowN, fastN := slowFast(t)
		r := newRouter(t, Options{})
		r.Publish(&Endpoint{Name: "ep", Variants: []*Variant{{Name: "v", Weight: 1, Strategy: strategy, Instances: []Instance{slow, fast}}}})
		var wg sync.WaitGroup
		var left atomic.Int64
		left.Store(100)
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					if _, err := r.Invoke(context.Background(), "ep", Request{}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return float64(slowN.Load()) / float64(slowN.Load()+fastN.Load())
	}
	lor, random := share(LeastOutstanding), share(Random)
	t.Logf("share of requests sent to the slow instance: least-outstanding %.2f, random %.2f", lor, random)
	// Two clients share 100 requests. Least-outstanding never gives the
	// slow instance a second request while it works on one, so one client
	// waits on it while the other runs through the fast one; random sends
	// it half of them.
	if lor > random/2 {
		t.Errorf("slow instance share: least-outstanding %.2f, random %.2f; want least-outstanding under half of random", lor, random)
	}
}

func TestUnhealthyLeavesPoolAndRetryOnConnectFailure(t *testing.T) {
	good := named(t, "good")
	bad := named(t, "bad")
	// dead looks healthy but refuses connections.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := &testInstance{url: "http://" + ln.Addr().String()}
	ln.Close()

	r := newRouter(t, Options{})
	r.Publish(&Endpoint{Name: "ep", Variants: []*Variant{{Name: "v", Weight: 1, Instances: []Instance{dead, bad, good}}}})
	bad.unhealthy.Store(true)
	for range 50 {
		if got := invoke(t, r, "ep", Request{Body: []byte("x")}); got != "good" {
			t.Fatalf("answered by %s", got)
		}
	}
	// A streamed body is retried after a failed dial too.
	for range 10 {
		resp, err := r.Invoke(context.Background(), "ep", Request{BodyReader: strings.NewReader("xyz"), ContentLength: 3})
		if err != nil || string(resp.Body) != "good" {
			t.Fatalf("streamed: %v %v", resp, err)
		}
	}
	bad.unhealthy.Store(false)
	seen := map[string]bool{}
	for range 50 {
		seen[invoke(t, r, "ep", Request{})] = true
	}
	if !seen["bad"] {
		t.Error("an instance that became healthy again got no request")
	}
	good.unhealthy.Store(true)
	bad.unhealthy.Store(true)
	_, err = r.Invoke(context.Background(), "ep", Request{})
	if fault.KindOf(err) != fault.Unavailable {
		t.Errorf("no healthy instance: %v", err)
	}
}

func TestModelErrorsAndTimeout(t *testing.T) {
	failing := backend(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad input", http.StatusBadRequest)
	})
	hanging := backend(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	broken := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, "only part")
		w.(http.Flusher).Flush()
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.Close()
	})
	garbage := backend(t, func(w http.ResponseWriter, r *http.Request) {
		conn, _, _ := http.NewResponseController(w).Hijack()
		io.WriteString(conn, "this is not HTTP\r\n\r\n")
		conn.Close()
	})
	r := newRouter(t, Options{Timeout: 200 * time.Millisecond})
	r.Publish(one("failing", failing))
	r.Publish(one("hanging", hanging))
	r.Publish(one("broken", broken))
	r.Publish(one("garbage", garbage))

	var me *ModelError
	_, err := r.Invoke(context.Background(), "failing", Request{})
	if !errors.As(err, &me) || me.OriginalStatus != 400 || me.OriginalBody != "bad input" || !strings.Contains(me.Error(), "client error (400)") {
		t.Errorf("failing model: %v", err)
	}
	start := time.Now()
	_, err = r.Invoke(context.Background(), "hanging", Request{})
	if !errors.As(err, &me) || !me.Timeout || me.OriginalStatus != 0 || !strings.Contains(me.Error(), "timed out") {
		t.Errorf("hanging model: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %s", d)
	}
	for _, ep := range []string{"broken", "garbage"} {
		_, err = r.Invoke(context.Background(), ep, Request{Body: []byte("x")})
		if !errors.As(err, &me) || me.Timeout {
			t.Errorf("%s model: %v", ep, err)
		}
	}
}

func TestBodyLimitWhileStreaming(t *testing.T) {
	var got atomic.Int64
	inst := backend(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		got.Store(n)
	})
	r := newRouter(t, Options{})
	r.Publish(one("ep", inst))
	// An unknown length (chunked) body over the limit.
	_, err := r.Invoke(context.Background(), "ep", Request{BodyReader: io.LimitReader(zeros{}, 5000), ContentLength: -1, MaxBodyBytes: 1000})
	if fault.KindOf(err) != fault.Invalid || !strings.Contains(err.Error(), "larger") {
		t.Errorf("oversized body: %v", err)
	}
	if _, err := r.Invoke(context.Background(), "ep", Request{BodyReader: io.LimitReader(zeros{}, 1000), ContentLength: -1, MaxBodyBytes: 1000}); err != nil {
		t.Errorf("body at the limit: %v", err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestDrainWaitsForRequestsInFlight(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	busy := backend(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
		io.WriteString(w, "old")
	})
	fresh := named(t, "new")
	r := newRouter(t, Options{})
	r.Publish(one("ep", busy))
	done := make(chan string)
	go func() { done <- invoke(t, r, "ep", Request{}) }()
	<-entered
	// A new table keeping busy keeps its count.
	r.Publish(one("ep", busy, fresh))
	if n := r.Outstanding(busy); n != 1 {
		t.Fatalf("outstanding after republish = %d, want 1", n)
	}
	r.Publish(one("ep", fresh))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := r.Drain(ctx, []Instance{busy}); err == nil {
		t.Fatal("Drain returned while a request was in flight")
	}
	if got := invoke(t, r, "ep", Request{}); got != "new" {
		t.Fatalf("after the switch answered by %s", got)
	}
	close(release)
	if err := r.Drain(context.Background(), []Instance{busy}); err != nil {
		t.Fatal(err)
	}
	if got := <-done; got != "old" {
		t.Errorf("request in flight got %q", got)
	}
}

type recordingCapturer struct {
	mu     sync.Mutex
	events []CaptureEvent
}

func (c *recordingCapturer) Sample() bool { return true }
func (c *recordingCapturer) Capture(ev CaptureEvent) {
	c.mu.Lock()
	c.events = append(c.events, ev)
	c.mu.Unlock()
}

type recordingMetrics struct {
	mu  sync.Mutex
	obs map[string][]int // by variant: statuses
}

func (m *recordingMetrics) Variant(endpoint, variant string) VariantMetrics {
	return &recordingVariant{m: m, name: variant}
}

type recordingVariant struct {
	m    *recordingMetrics
	name string
}

func (v *recordingVariant) Observe(instance string, status int, model, overhead time.Duration) {
	v.m.mu.Lock()
	v.m.obs[v.name] = append(v.m.obs[v.name], status)
	v.m.mu.Unlock()
}
func (v *recordingVariant) ShadowDropped() {}

func (m *recordingMetrics) count(variant string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.obs[variant])
}

func TestShadowAndCapture(t *testing.T) {
	shadowGot := make(chan string, 10)
	shadow := backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		shadowGot <- string(b)
		io.WriteString(w, "shadow answer")
	})
	prod := backend(t, echo)
	capt := &recordingCapturer{}
	met := &recordingMetrics{obs: map[string][]int{}}
	r := newRouter(t, Options{Metrics: met})
	r.Publish(&Endpoint{Name: "ep",
		Variants: []*Variant{{Name: "prod", Weight: 1, Instances: []Instance{prod}}},
		Shadows:  []*Variant{{Name: "shadow", Weight: 1, Instances: []Instance{shadow}}},
		Capture:  capt,
	})
	resp, err := r.Invoke(context.Background(), "ep", Request{
		BodyReader: strings.NewReader("payload"), ContentLength: 7, ContentType: "text/plain", InferenceID: "i1", RequestID: "req-1",
	})
	if err != nil || string(resp.Body) != "payload" || resp.Variant != "prod" {
		t.Fatalf("Invoke: %+v %v", resp, err)
	}
	select {
	case got := <-shadowGot:
		if got != "payload" {
			t.Errorf("shadow got %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shadow got no copy")
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if met.count("shadow") == 0 {
			return errors.New("no shadow invocation counted")
		}
		return nil
	})
	if met.count("shadow") != 1 || met.count("prod") != 1 {
		t.Errorf("metrics: %v", met.obs)
	}
	capt.mu.Lock()
	defer capt.mu.Unlock()
	if len(capt.events) != 1 {
		t.Fatalf("captured %d events", len(capt.events))
	}
	ev := capt.events[0]
	if string(ev.RequestBody) != "payload" || string(ev.ResponseBody) != "payload" || ev.EventID != "req-1" ||
		ev.InferenceID != "i1" || ev.Variant != "prod" || ev.Endpoint != "ep" || ev.RequestContentType != "text/plain" {
		t.Errorf("capture event = %+v", ev)
	}
}

// gatedInstance is an instance whose address is known only once gate is
// closed: a request to it waits in the router until then.
type gatedInstance struct {
	*testInstance
	gate chan struct{}
}

func (i *gatedInstance) URL() string { <-i.gate; return i.testInstance.URL() }

// TestBorrowedBodyCopiedForShadow: a body only valid until Close (the
// fast path's connection buffer) reaches the shadow intact after the
// caller reused its memory, and data capture sees it too.
func TestBorrowedBodyCopiedForShadow(t *testing.T) {
	shadowGot := make(chan string, 1)
	shadow := &gatedInstance{gate: make(chan struct{}), testInstance: backend(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		shadowGot <- string(b)
	})}
	capt := &recordingCapturer{}
	r := newRouter(t, Options{})
	r.Publish(&Endpoint{Name: "ep",
		Variants: []*Variant{{Name: "prod", Weight: 1, Instances: []Instance{backend(t, echo)}}},
		Shadows:  []*Variant{{Name: "shadow", Weight: 1, Instances: []Instance{shadow}}},
		Capture:  capt,
	})
	body := []byte("payload")
	resp, err := r.Invoke(context.Background(), "ep", Request{Body: body, ContentLength: 7, BodyBorrowed: true})
	if err != nil || string(resp.Body) != "payload" {
		t.Fatalf("Invoke: %+v %v", resp, err)
	}
	copy(body, "XXXXXXX") // the caller reuses its buffer
	close(shadow.gate)    // only now is the shadow copy sent
	select {
	case got := <-shadowGot:
		if got != "payload" {
			t.Errorf("shadow got %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shadow got no copy")
	}
	capt.mu.Lock()
	defer capt.mu.Unlock()
	if len(capt.events) != 1 || string(capt.events[0].RequestBody) != "payload" {
		t.Errorf("capture events = %+v", capt.events)
	}
}

func TestStreamRelaysAsItArrives(t *testing.T) {
	next := make(chan struct{})
	inst := backend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		for i := range 3 {
			<-next
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
		}
	})
	r := newRouter(t, Options{})
	r.Publish(one("ep", inst))
	s, err := r.Open(context.Background(), "ep", &Request{Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.ContentType != "text/event-stream" {
		t.Errorf("ContentType = %q", s.ContentType)
	}
	buf := make([]byte, 64)
	for i := range 3 {
		next <- struct{}{}
		n, err := s.Read(buf)
		if (err != nil && err != io.EOF) || string(buf[:n]) != fmt.Sprintf("part%d;", i) {
			t.Fatalf("read %d: %q %v", i, buf[:n], err)
		}
	}
	if n, err := s.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("end: %d %v", n, err)
	}
}

func TestLargeBodiesBothWays(t *testing.T) {
	inst := backend(t, echo)
	r := newRouter(t, Options{})
	r.Publish(one("ep", inst))
	body := bytes.Repeat([]byte("0123456789"), 300_000)
	resp, err := r.Invoke(context.Background(), "ep", Request{BodyReader: bytes.NewReader(body), ContentLength: int64(len(body))})
	if err != nil || !bytes.Equal(resp.Body, body) {
		t.Fatalf("3 MB echo: %v", err)
	}
}

// TestAbandonInterruptsEveryPath: Abandon fails invocations in progress at
// once, whether their body has a length (h1 client) or not (Transport),
// although the callers' contexts never end.
func TestAbandonInterruptsEveryPath(t *testing.T) {
	arrived := make(chan struct{}, 2)
	hanging := backend(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	r := newRouter(t, Options{Timeout: time.Minute})
	r.Publish(one("hanging", hanging))
	errs := make(chan error, 2)
	for _, req := range []Request{
		{Body: []byte("sized")},
		{BodyReader: io.MultiReader(strings.NewReader("unsized")), ContentLength: -1},
	} {
		go func() {
			_, err := r.Invoke(context.Background(), "hanging", req)
			errs <- err
		}()
	}
	<-arrived
	<-arrived
	start := time.Now()
	r.Abandon()
	for range 2 {
		select {
		case err := <-errs:
			if fault.KindOf(err) != fault.Unavailable || !strings.Contains(err.Error(), "abandoned") {
				t.Errorf("abandoned invocation: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("an invocation was not abandoned")
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("abandoning took %v", d)
	}
}

// TestConnectionsClosedWhenInstanceGoes checks that the router keeps no
// pooled connection to an instance it no longer routes to, nor to an
// instance's old address after it moved.
func TestConnectionsClosedWhenInstanceGoes(t *testing.T) {
	r := newRouter(t, Options{})
	a, b := named(t, "a"), named(t, "b")
	addrA, addrB := strings.TrimPrefix(a.url, "http://"), strings.TrimPrefix(b.url, "http://")
	r.Publish(one("ep", a))
	if got := invoke(t, r, "ep", Request{}); got != "a" {
		t.Fatalf("answered by %s", got)
	}
	if n := r.upstream.IdleConns(addrA); n != 1 {
		t.Fatalf("%d idle connections to a, want 1", n)
	}
	r.Remove("ep")
	if n := r.upstream.IdleConns(addrA); n != 0 {
		t.Fatalf("%d idle connections to a removed instance, want 0", n)
	}

	// An instance restarted on a new port: its old connections go.
	moving := &testInstance{url: a.url}
	r.Publish(one("ep2", moving))
	invoke(t, r, "ep2", Request{})
	moving.url = b.url
	if got := invoke(t, r, "ep2", Request{}); got != "b" {
		t.Fatalf("answered by %s after the move", got)
	}
	if n := r.upstream.IdleConns(addrA); n != 0 {
		t.Fatalf("%d idle connections to the old address, want 0", n)
	}
	if n := r.upstream.IdleConns(addrB); n != 1 {
		t.Fatalf("%d idle connections to the new address, want 1", n)
	}
}
