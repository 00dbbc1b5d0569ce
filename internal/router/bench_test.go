package router

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// benchBackend is an in-process echo model server.
func benchBackend(b *testing.B) *testInstance {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.Copy(w, r.Body)
	}))
	b.Cleanup(srv.Close)
	return &testInstance{url: srv.URL}
}

var benchBody = bytes.Repeat([]byte(`{"x":1}`), 146) // about 1 KiB

// BenchmarkInvokeDirect is the baseline: the same request straight to the
// echo server with a tuned http.Client.
func BenchmarkInvokeDirect(b *testing.B) {
	inst := benchBackend(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true}}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Post(inst.url+"/invocations", "application/json", bytes.NewReader(benchBody))
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}

// BenchmarkInvoke is the buffered Invoke (batch and async callers).
func BenchmarkInvoke(b *testing.B) {
	r := New(Options{})
	b.Cleanup(r.Close)
	r.Publish(one("ep", benchBackend(b), benchBackend(b)))
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Invoke(context.Background(), "ep", Request{Body: benchBody, ContentType: "application/json"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkInvokeStreamed is the runtime API's path: the body streamed in
// with Open, the answer relayed through a pooled buffer.
func BenchmarkInvokeStreamed(b *testing.B) {
	r := New(Options{})
	b.Cleanup(r.Close)
	r.Publish(one("ep", benchBackend(b), benchBackend(b)))
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, CopyBufferSize)
		br := bytes.NewReader(benchBody)
		for pb.Next() {
			br.Reset(benchBody)
			s, err := r.Open(context.Background(), "ep", &Request{BodyReader: br, ContentLength: int64(len(benchBody)), ContentType: "application/json"})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.CopyBuffer(io.Discard, onlyReader{s}, buf); err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
}

type onlyReader struct{ io.Reader }

// BenchmarkInvokeCapped is BenchmarkInvoke on a variant with a cap on
// requests in flight per instance that the load never reaches: the cost
// of taking and giving back a slot.
func BenchmarkInvokeCapped(b *testing.B) {
	r := New(Options{})
	b.Cleanup(r.Close)
	r.Publish(&Endpoint{Name: "ep", Variants: []*Variant{{Name: "AllTraffic", Weight: 1, MaxConcurrency: 1024,
		Instances: []Instance{benchBackend(b), benchBackend(b)}}}})
	b.ReportAllocs()
	b.SetBytes(int64(len(benchBody)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Invoke(context.Background(), "ep", Request{Body: benchBody, ContentType: "application/json"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
