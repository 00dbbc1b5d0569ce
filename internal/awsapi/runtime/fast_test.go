package runtime

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/awsapi"
	"github.com/berth-io/berth/internal/h1"
	"github.com/berth-io/berth/internal/router"
)

type testInstance struct{ url string }

func (i *testInstance) URL() string   { return i.url }
func (i *testInstance) Healthy() bool { return true }

// TestFastPathMatchesNetHTTP sends the same requests to berth's runtime API
// served by net/http alone and by the h1 fast path in front of it, and
// compares the answers (status, headers, body).
func TestFastPathMatchesNetHTTP(t *testing.T) {
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch string(body) {
		case "fail":
			http.Error(w, "model says no", http.StatusBadRequest)
			return
		case "big":
			w.Write(bytes.Repeat([]byte("x"), 256<<10))
			return
		case "slow":
			time.Sleep(300 * time.Millisecond)
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			w.Header().Set("Content-Type", ct)
		}
		if ca := r.Header.Get("X-Amzn-SageMaker-Custom-Attributes"); ca != "" {
			w.Header().Set("X-Amzn-SageMaker-Custom-Attributes", "echo:"+ca)
		}
		w.Write(body)
	}))
	defer model.Close()
	rt := router.New(router.Options{Timeout: 150 * time.Millisecond})
	defer rt.Close()
	rt.Publish(&router.Endpoint{Name: "ep", Variants: []*router.Variant{{Name: "AllTraffic", Weight: 1, Instances: []router.Instance{&testInstance{model.URL}}}}})
	h := New(rt, Options{MaxPayloadBytes: 1 << 10, BufferBytes: 64 << 10})
	api := awsapi.NewHandler(awsapi.Services{Runtime: h}, slog.New(slog.DiscardHandler))

	plain := httptest.NewServer(api)
	defer plain.Close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var fastHits atomic.Int64
	fl := h1.NewListener(ln, h1.FastOptions{
		Match: h.FastMatch,
		Handle: func(ctx context.Context, req *h1.FastRequest, w *h1.FastResponseWriter) {
			fastHits.Add(1)
			h.FastInvoke(ctx, req, w)
		},
		MaxBodyBytes: 1 << 10,
	})
	srv := &http.Server{Handler: api}
	go srv.Serve(fl)
	defer func() {
		srv.Close()
		fl.Shutdown(context.Background())
	}()
	fastURL := "http://" + ln.Addr().String()

	sig := "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=abc"
	tests := []struct {
		name, path, body string
		header           map[string]string
		fast             bool
	}{
		{"echo", "/endpoints/ep/invocations", "1,2,3", map[string]string{"Content-Type": "text/csv"}, true},
		{"signed, attributes, no content type", "/endpoints/ep/invocations", "a", map[string]string{"Authorization": sig, "X-Amzn-SageMaker-Custom-Attributes": "k=v"}, true},
		{"empty body", "/endpoints/ep/invocations", "", nil, true},
		{"case-insensitive endpoint name", "/endpoints/EP/invocations", "a", nil, true},
		{"model error", "/endpoints/ep/invocations", "fail", nil, true},
		{"model timeout", "/endpoints/ep/invocations", "slow", nil, true},
		{"answer over BufferBytes", "/endpoints/ep/invocations", "big", nil, true},
		{"unknown endpoint", "/endpoints/nope/invocations", "a", nil, true},
		{"unknown variant", "/endpoints/ep/invocations", "a", map[string]string{"X-Amzn-SageMaker-Target-Variant": "Other"}, true},
		{"invalid inference id", "/endpoints/ep/invocations", "a", map[string]string{"X-Amzn-SageMaker-Inference-Id": " x"}, true},
		{"target variant, accept", "/endpoints/ep/invocations", "a", map[string]string{"X-Amzn-SageMaker-Target-Variant": "alltraffic", "Accept": "text/csv"}, true},
		{"target model (unsupported)", "/endpoints/ep/invocations", "a", map[string]string{"X-Amzn-SageMaker-Target-Model": "m.tar.gz"}, true},
		{"target container (unsupported)", "/endpoints/ep/invocations", "a", map[string]string{"X-Amzn-SageMaker-Target-Container-Hostname": "c1"}, true},
		{"inference component (unsupported)", "/endpoints/ep/invocations", "a", map[string]string{"X-Amzn-SageMaker-Inference-Component": "ic"}, true},
		{"session (unsupported)", "/endpoints/ep/invocations", "a", map[string]string{"X-Amzn-SageMaker-Session-Id": "NEW_SESSION"}, true},
		{"explanations (unsupported)", "/endpoints/ep/invocations", "a", map[string]string{"X-Amzn-SageMaker-Enable-Explanations": "`true`"}, true},
		{"too large", "/endpoints/ep/invocations", strings.Repeat("a", 2<<10), nil, false},
		{"escaped name", "/endpoints/e%70/invocations", "a", nil, false},
		{"query", "/endpoints/ep/invocations?x=1", "a", nil, false},
		{"control plane target", "/endpoints/ep/invocations", "a", map[string]string{"X-Amz-Target": "SageMaker.ListModels"}, false},
		{"response stream", "/endpoints/ep/invocations-response-stream", "a", nil, false},
	}
	get := func(base, path, body string, header map[string]string) (int, http.Header, []byte) {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, b
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits := fastHits.Load()
			s1, h1, b1 := get(plain.URL, tt.path, tt.body, tt.header)
			s2, h2, b2 := get(fastURL, tt.path, tt.body, tt.header)
			if got := fastHits.Load() - hits; got != map[bool]int64{false: 0, true: 1}[tt.fast] {
				t.Errorf("fast path served %d requests", got)
			}
			if s1 != s2 || !bytes.Equal(b1, b2) {
				t.Errorf("net/http: %d %.200q\nfast: %d %.200q", s1, b1, s2, b2)
			}
			if h1.Get("X-Amzn-Requestid") == "" || h2.Get("X-Amzn-Requestid") == "" {
				t.Error("no request id")
			}
			if h1.Get("Content-Length") == "" {
				// net/http relays an answer over BufferBytes of unknown
				// length chunked; the fast path, which buffers it, sends
				// its length.
				h2.Del("Content-Length")
			}
			for _, hh := range []http.Header{h1, h2} {
				hh.Del("X-Amzn-Requestid")
				hh.Del("Date")
			}
			if !sameHeaders(h1, h2) {
				t.Errorf("headers differ:\nnet/http: %v\nfast:     %v", h1, h2)
			}
		})
	}
}

func sameHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// TestFastPathAbortsBrokenLargeAnswer: an answer over BufferBytes that
// breaks off cuts the client's connection without a response, and is not
// logged as a panic.
func TestFastPathAbortsBrokenLargeAnswer(t *testing.T) {
	model := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Length", "4000")
		w.Write(bytes.Repeat([]byte("x"), 2000))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}))
	defer model.Close()
	rt := router.New(router.Options{})
	defer rt.Close()
	rt.Publish(&router.Endpoint{Name: "ep", Variants: []*router.Variant{{Name: "AllTraffic", Weight: 1, Instances: []router.Instance{&testInstance{model.URL}}}}})
	h := New(rt, Options{BufferBytes: 1000})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	fl := h1.NewListener(ln, h1.FastOptions{Match: h.FastMatch, Handle: h.FastInvoke,
		Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelError}))})
	defer fl.Shutdown(context.Background())
	resp, err := http.Post("http://"+ln.Addr().String()+"/endpoints/ep/invocations", "text/csv", strings.NewReader("a"))
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got a response: %d", resp.StatusCode)
	}
	if logged.Len() > 0 {
		t.Errorf("logged: %s", logged.String())
	}
}
