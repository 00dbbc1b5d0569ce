package h1

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
)

var benchBody = bytes.Repeat([]byte("1.5,"), 16) // 64 bytes, like bench/realtime

// echoBackend is a plain net/http echo server standing in for the model
// container (internal/testserver answers the same way).
func echoBackend(b *testing.B) string {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return addrOf(srv)
}

// BenchmarkClientRoundTrip: one POST round trip to the same echo server,
// h1.Client against http.Client.
func BenchmarkClientRoundTrip(b *testing.B) {
	addr := echoBackend(b)
	b.Run("h1", func(b *testing.B) {
		c := NewClient(ClientOptions{})
		defer c.Close()
		hdr := AppendHeader(nil, "Content-Type", "text/csv")
		req := &Request{Path: "/invocations", Header: hdr, Body: benchBody}
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Do(context.Background(), addr, req)
			if err != nil {
				b.Fatal(err)
			}
			buf, err = resp.ReadBody(buf[:0], 1<<20)
			resp.Close()
			if err != nil || len(buf) != len(benchBody) {
				b.Fatal(err)
			}
		}
	})
	b.Run("nethttp", func(b *testing.B) {
		tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr}
		url := "http://" + addr + "/invocations"
		b.ReportAllocs()
		for b.Loop() {
			resp, err := c.Post(url, "text/csv", bytes.NewReader(benchBody))
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || len(body) != len(benchBody) {
				b.Fatal(err)
			}
		}
	})
}

// h1Proxy is the fast path relaying to the backend with the h1 client,
// the shape berth's InvokeEndpoint takes with this package.
func h1Proxy(b *testing.B, backend string) string {
	b.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	c := NewClient(ClientOptions{})
	handle := func(ctx context.Context, r *FastRequest, w *FastResponseWriter) {
		var hdr [128]byte
		h := hdr[:0]
		if ct := r.HeaderValue("Content-Type"); ct != nil {
			h = AppendHeader(h, "Content-Type", ct)
		}
		resp, err := c.Do(ctx, backend, &Request{Path: "/invocations", Header: h, Body: r.Body})
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		body, err := resp.ReadBody(w.Buffer(), 6<<20)
		if err != nil {
			resp.Close()
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(resp.StatusCode)
		if resp.ContentType != nil {
			w.AddHeaderBytes("Content-Type", resp.ContentType)
		}
		w.AddHeader("x-Amzn-Invoked-Production-Variant", "AllTraffic")
		w.SetBody(body)
		resp.Close()
	}
	l := NewListener(inner, FastOptions{Match: invocationMatch, Handle: handle})
	srv := &http.Server{Handler: http.NotFoundHandler()}
	go srv.Serve(l)
	b.Cleanup(func() {
		srv.Close()
		l.Shutdown(context.Background())
		c.Close()
	})
	return inner.Addr().String()
}

// stdProxy is the same relay with net/http's server and http.Transport,
// as berth's router does today.
func stdProxy(b *testing.B, backend string) string {
	b.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 1024, DisableCompression: true}
	url := "http://" + backend + "/invocations"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), "POST", url, bytes.NewReader(body))
		req.Header.Set("Content-Type", r.Header.Get("Content-Type"))
		resp, err := tr.RoundTrip(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.Header().Set("x-Amzn-Invoked-Production-Variant", "AllTraffic")
		w.WriteHeader(resp.StatusCode)
		w.Write(out)
	}))
	b.Cleanup(func() { srv.Close(); tr.CloseIdleConnections() })
	return addrOf(srv)
}

// BenchmarkProxy drives a proxy in front of the echo backend with
// keep-alive clients (the h1 client, cheap, for both): fast path + h1
// client against net/http server + http.Transport. -cpu sets the client
// parallelism through RunParallel.
func BenchmarkProxy(b *testing.B) {
	backend := echoBackend(b)
	for _, p := range []struct {
		name  string
		start func(*testing.B, string) string
	}{{"h1", h1Proxy}, {"nethttp", stdProxy}} {
		b.Run(p.name, func(b *testing.B) {
			addr := p.start(b, backend)
			driver := NewClient(ClientOptions{})
			defer driver.Close()
			hdr := AppendHeader(nil, "Content-Type", "text/csv")
			b.ReportAllocs()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				req := &Request{Path: "/endpoints/e/invocations", Header: hdr, Body: benchBody}
				var buf []byte
				for pb.Next() {
					resp, err := driver.Do(context.Background(), addr, req)
					if err != nil {
						b.Fatal(err)
					}
					buf, err = resp.ReadBody(buf[:0], 1<<20)
					status := resp.StatusCode
					resp.Close()
					if err != nil || status != 200 || !bytes.Equal(buf, benchBody) {
						b.Fatalf("status %d err %v body %q", status, err, buf)
					}
				}
			})
		})
	}
}

// BenchmarkAdapter: the cost of serving a fast-path request through
// HTTPHandler (http.Request + header map) instead of a FastRequest handler.
func BenchmarkAdapter(b *testing.B) {
	raw := []byte(invReq(string(benchBody), "X-Amzn-SageMaker-Custom-Attributes: a=b\r\nAccept: text/csv\r\n"))
	end, _, _ := findHeaderEnd(raw, 0)
	var req FastRequest
	if !parseRequestHead(raw[:end], &req) {
		b.Fatal("not parsed")
	}
	req.Body = raw[end:]
	plain := func(_ context.Context, r *FastRequest, w *FastResponseWriter) {
		w.AddHeaderBytes("Content-Type", r.HeaderValue("Content-Type"))
		w.Write(r.Body)
	}
	adapted := HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
		w.Write(body)
	}))
	for _, h := range []struct {
		name string
		fn   func(context.Context, *FastRequest, *FastResponseWriter)
	}{{"fast", plain}, {"adapter", adapted}} {
		b.Run(h.name, func(b *testing.B) {
			w := &FastResponseWriter{}
			b.ReportAllocs()
			for b.Loop() {
				w.reset()
				h.fn(context.Background(), &req, w)
			}
		})
	}
}

// BenchmarkParseRequest measures the request head parser alone.
func BenchmarkParseRequest(b *testing.B) {
	raw := []byte(invReq(string(benchBody), "X-Amzn-SageMaker-Custom-Attributes: a=b\r\nAccept: text/csv\r\nUser-Agent: aws-sdk-go-v2/1.0\r\n"))
	var req FastRequest
	b.ReportAllocs()
	for b.Loop() {
		end, _, _ := findHeaderEnd(raw, 0)
		if !parseRequestHead(raw[:end], &req) {
			b.Fatal("not parsed")
		}
	}
}

// BenchmarkSockReadWouldBlock is the price of the read that finds no data
// (EAGAIN) before a goroutine parks on the poller: what serveInline and
// sockIO.WriteRead save, about twice per proxied request (see
// BENCHMARKS.md).
func BenchmarkSockReadWouldBlock(b *testing.B) {
	if !rawSyscalls {
		b.Skip("raw socket calls are Linux-only")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c) // keeps the connection open and quiet
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	var fd uintptr
	raw.Control(func(f uintptr) { fd = f })
	buf := make([]byte, 4096)
	for b.Loop() {
		if _, errno := rawRead(fd, buf); errno != syscall.EAGAIN {
			b.Fatalf("read: %v, want EAGAIN", errno)
		}
	}
}

// BenchmarkSockExchange is one request/answer exchange with an echo peer
// over loopback: Write then Read (which first tries a read that finds
// nothing, then parks) against WriteRead (which parks at once).
func BenchmarkSockExchange(b *testing.B) {
	for _, mode := range []string{"write+read", "writeread"} {
		b.Run(mode, func(b *testing.B) {
			c, peer := tcpPair(b)
			go echoPeer(peer)
			var s sockIO
			s.init(c)
			out := bytes.Repeat([]byte("x"), 200)
			in := make([]byte, 4096)
			for b.Loop() {
				var n int
				if mode == "writeread" {
					var werr, rerr error
					if n, werr, rerr = s.WriteRead(out, in); werr != nil || rerr != nil {
						b.Fatal(werr, rerr)
					}
				} else {
					if _, err := s.Write(out); err != nil {
						b.Fatal(err)
					}
					var err error
					if n, err = s.Read(in); err != nil {
						b.Fatal(err)
					}
				}
				for n < len(out) { // the echo may come back in pieces
					m, err := s.Read(in[n:])
					if err != nil {
						b.Fatal(err)
					}
					n += m
				}
			}
		})
	}
}
