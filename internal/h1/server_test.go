package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/testutil"
)

// invocationMatch is the matcher berth's runtime API would use.
func invocationMatch(r *FastRequest) bool {
	return string(r.Method) == "POST" && bytes.HasPrefix(r.Path, []byte("/endpoints/")) &&
		bytes.HasSuffix(r.Path, []byte("/invocations")) && r.ContentLength >= 0 &&
		r.HeaderValue("X-Amz-Target") == nil
}

func fastEcho(_ context.Context, r *FastRequest, w *FastResponseWriter) {
	if ct := r.HeaderValue("Content-Type"); ct != nil {
		w.AddHeaderBytes("Content-Type", ct)
	}
	if ca := r.HeaderValue("X-Amzn-SageMaker-Custom-Attributes"); ca != nil {
		w.AddHeaderBytes("X-Amzn-SageMaker-Custom-Attributes", ca)
	}
	w.AddHeader("x-Amzn-Invoked-Production-Variant", "AllTraffic")
	w.AddHeader("X-Path", "fast")
	w.Write(r.Body)
}

func slowEcho(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Path", "slow")
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
}

type front struct {
	addr string
	l    *Listener
	srv  *http.Server
	done chan error
}

func startFront(t *testing.T, opts FastOptions, srvOpts func(*http.Server)) *front {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Match == nil {
		opts.Match = invocationMatch
	}
	if opts.Handle == nil {
		opts.Handle = fastEcho
	}
	f := &front{addr: inner.Addr().String(), l: NewListener(inner, opts), done: make(chan error, 1)}
	f.srv = &http.Server{Handler: http.HandlerFunc(slowEcho), ReadHeaderTimeout: 5 * time.Second}
	if srvOpts != nil {
		srvOpts(f.srv)
	}
	go func() { f.done <- f.srv.Serve(f.l) }()
	t.Cleanup(func() { f.stop(t) })
	return f
}

func (f *front) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f.srv.Shutdown(ctx)
	if err := f.l.Shutdown(ctx); err != nil {
		t.Errorf("listener shutdown: %v", err)
	}
}

// rawClient is one TCP connection with a response reader.
type rawClient struct {
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawClient{c: c, br: bufio.NewReader(c)}
}

func (rc *rawClient) send(t *testing.T, s string) {
	t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		t.Fatal(err)
	}
}

func (rc *rawClient) read(t *testing.T) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func invReq(body string, extra ...string) string {
	return "POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n" +
		strings.Join(extra, "") + fmt.Sprintf("Content-Length: %d\r\n\r\n%s", len(body), body)
}

func TestFrontMixedOnOneConnection(t *testing.T) {
	f := startFront(t, FastOptions{}, nil)
	rc := dialRaw(t, f.addr)
	steps := []struct {
		req, path, body string
	}{
		{invReq("1,2", "X-Amzn-SageMaker-Custom-Attributes: k=v\r\n"), "fast", "1,2"},
		{invReq("3,4"), "fast", "3,4"},
		{"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n", "slow", "GET /ping "},
		// Once handed over, the connection stays with net/http.
		{invReq("5,6"), "slow", "POST /endpoints/e/invocations 5,6"},
	}
	for i, s := range steps {
		rc.send(t, s.req)
		resp, body := rc.read(t)
		if resp.StatusCode != 200 || resp.Header.Get("X-Path") != s.path || body != s.body {
			t.Fatalf("step %d: %d %q %q", i, resp.StatusCode, resp.Header.Get("X-Path"), body)
		}
		if i == 0 {
			if resp.Header.Get("X-Amzn-SageMaker-Custom-Attributes") != "k=v" ||
				resp.Header.Get("X-Amzn-Invoked-Production-Variant") != "AllTraffic" ||
				resp.Header.Get("Content-Type") != "text/csv" || resp.Header.Get("Date") == "" {
				t.Fatalf("headers %v", resp.Header)
			}
		}
	}
}

func TestFrontRejectedRequestKeepsItsBytes(t *testing.T) {
	f := startFront(t, FastOptions{}, nil)
	rc := dialRaw(t, f.addr)
	// A rejected request with a body, pipelined with an eligible one: both
	// reach net/http intact.
	rc.send(t, "POST /other HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"+invReq("7"))
	for _, want := range []string{"POST /other hello", "POST /endpoints/e/invocations 7"} {
		resp, body := rc.read(t)
		if resp.Header.Get("X-Path") != "slow" || body != want {
			t.Fatalf("%q %q, want slow %q", resp.Header.Get("X-Path"), body, want)
		}
	}
	// Rejected by the matcher: X-Amz-Target.
	rc2 := dialRaw(t, f.addr)
	rc2.send(t, invReq("8", "X-Amz-Target: SageMaker.ListEndpoints\r\n"))
	if resp, _ := rc2.read(t); resp.Header.Get("X-Path") != "slow" {
		t.Fatal("X-Amz-Target request took the fast path")
	}
}

func TestFrontPipelined(t *testing.T) {
	f := startFront(t, FastOptions{}, nil)
	rc := dialRaw(t, f.addr)
	rc.send(t, invReq("a")+invReq("bb")+invReq("ccc")+"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
	for i, want := range []string{"a", "bb", "ccc", "GET /ping "} {
		_, body := rc.read(t)
		if body != want {
			t.Fatalf("response %d: %q, want %q", i, body, want)
		}
	}
}

func TestFrontHandedOver(t *testing.T) {
	f := startFront(t, FastOptions{MaxHeaderBytes: 1024}, func(s *http.Server) { s.MaxHeaderBytes = 1024 })
	tests := []struct {
		name, req string
		status    int
	}{
		{"http/1.0", "POST /endpoints/e/invocations HTTP/1.0\r\nHost: x\r\nContent-Length: 1\r\n\r\nz", 200},
		{"malformed request line", "GARBAGE\r\n\r\n", 400},
		{"cl and te", "POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n", 200}, // net/http decides
		{"duplicate cl", "POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nzz", 400},
		{"no host", "POST /endpoints/e/invocations HTTP/1.1\r\nContent-Length: 1\r\n\r\nz", 400},
		{"oversized headers", "POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 20<<10) + "\r\nContent-Length: 1\r\n\r\nz", 431},
		{"expect", "POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz", 100},
		{"body over limit", "POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 7000000\r\n\r\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := dialRaw(t, f.addr)
			rc.send(t, tt.req)
			if tt.status == 0 {
				// net/http waits for the body: check it holds the connection.
				rc.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
				if _, err := rc.br.ReadByte(); !errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("err = %v, want a timeout", err)
				}
				return
			}
			resp, err := http.ReadResponse(rc.br, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.status || resp.Header.Get("X-Path") == "fast" {
				t.Fatalf("status %d path %q", resp.StatusCode, resp.Header.Get("X-Path"))
			}
		})
	}
}

func TestFrontConnectionClose(t *testing.T) {
	f := startFront(t, FastOptions{}, nil)
	rc := dialRaw(t, f.addr)
	rc.send(t, invReq("q", "Connection: close\r\n"))
	resp, body := rc.read(t)
	if body != "q" || !resp.Close || resp.Header.Get("X-Path") != "fast" {
		t.Fatalf("%q close=%v", body, resp.Close)
	}
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Fatalf("connection not closed: %v", err)
	}
}

func TestFrontSlowLoris(t *testing.T) {
	f := startFront(t, FastOptions{HeaderTimeout: 200 * time.Millisecond}, nil)
	rc := dialRaw(t, f.addr)
	rc.send(t, invReq("1"))
	rc.read(t) // a first request is served
	start := time.Now()
	head := invReq("2")
	var err error
	for i := 0; i < len(head) && err == nil; i++ {
		_, err = rc.c.Write([]byte{head[i]})
		time.Sleep(20 * time.Millisecond)
	}
	if err == nil {
		_, err = rc.br.ReadByte()
	}
	if err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("trickling client not cut off: err=%v after %v", err, time.Since(start))
	}
}

func TestFrontLargeBodyAndNetHTTPClient(t *testing.T) {
	f := startFront(t, FastOptions{}, nil)
	client := &http.Client{}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	for _, body := range [][]byte{[]byte("x"), big, {}, big[:5000]} {
		resp, err := client.Post("http://"+f.addr+"/endpoints/e/invocations", "text/csv", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("X-Path") != "fast" || !bytes.Equal(got, body) {
			t.Fatalf("path %q, %d bytes back of %d", resp.Header.Get("X-Path"), len(got), len(body))
		}
	}
}

func TestFrontAdapter(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /endpoints/{name}/invocations", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Amzn-ErrorType", "ValidationError")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"name":%q,"body":%q,"ct":%q}`, r.PathValue("name"), body, r.Header.Get("Content-Type"))
	})
	f := startFront(t, FastOptions{Handle: HTTPHandler(mux)}, nil)
	rc := dialRaw(t, f.addr)
	for i := 0; i < 2; i++ {
		rc.send(t, invReq("b"))
		resp, body := rc.read(t)
		if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-ErrorType") != "ValidationError" ||
			body != `{"name":"e","body":"b","ct":"text/csv"}` {
			t.Fatalf("%d %v %s", resp.StatusCode, resp.Header, body)
		}
	}
}

func TestFrontConcurrentAndNoLeaks(t *testing.T) {
	base := runtime.NumGoroutine()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(inner, FastOptions{Match: invocationMatch, Handle: fastEcho})
	srv := &http.Server{Handler: http.HandlerFunc(slowEcho)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	tr := &http.Transport{MaxIdleConnsPerHost: 8}
	client := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				path := "/endpoints/e/invocations"
				if i%10 == 0 {
					path = "/other"
				}
				body := fmt.Sprintf("g%d-%d", g, i)
				resp, err := client.Post("http://"+inner.Addr().String()+path, "text/csv", strings.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.HasSuffix(string(got), body) {
					errs <- fmt.Errorf("got %q for %q", got, body)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Idle keep-alive connections still open on both paths.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-served
	tr.CloseIdleConnections()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > base {
			return fmt.Errorf("%d goroutines, %d before", n, base)
		}
		return nil
	})
}

// TestFrontRequestsInPieces sends requests cut at every kind of place (in
// the request line, in the headers, between head and body, in the body)
// with pauses between the pieces, interleaved with whole ones: the fast
// path serves each, and no wake-up is lost while it waits for the rest.
func TestFrontRequestsInPieces(t *testing.T) {
	f := startFront(t, FastOptions{}, nil)
	rc := dialRaw(t, f.addr)
	req := invReq("0123456789")
	cuts := []int{5, 30, strings.Index(req, "\r\n\r\n") + 2, strings.Index(req, "\r\n\r\n") + 4, len(req) - 3}
	for i, cut := range cuts {
		rc.send(t, req[:cut])
		time.Sleep(20 * time.Millisecond)
		rc.send(t, req[cut:])
		resp, body := rc.read(t)
		if resp.Header.Get("X-Path") != "fast" || body != "0123456789" {
			t.Fatalf("cut %d at %d: %q %q", i, cut, resp.Header.Get("X-Path"), body)
		}
		rc.send(t, invReq("whole"))
		if resp, body := rc.read(t); resp.Header.Get("X-Path") != "fast" || body != "whole" {
			t.Fatalf("after cut %d: %q %q", i, resp.Header.Get("X-Path"), body)
		}
	}
}

// TestFrontManyExchanges runs thousands of requests on one connection,
// some pipelined in pairs and some cut in two, each answer read before the
// next is sent: a lost wake-up would stall until the client's deadline.
func TestFrontManyExchanges(t *testing.T) {
	f := startFront(t, FastOptions{}, nil)
	rc := dialRaw(t, f.addr)
	for i := range 3000 {
		a, b := invReq(fmt.Sprintf("a%d", i)), invReq(fmt.Sprintf("b%d", i))
		switch i % 3 {
		case 0:
			rc.send(t, a)
		case 1:
			rc.send(t, a+b)
		case 2:
			rc.send(t, a[:len(a)/2])
			rc.send(t, a[len(a)/2:])
		}
		if _, body := rc.read(t); body != fmt.Sprintf("a%d", i) {
			t.Fatalf("exchange %d: %q", i, body)
		}
		if i%3 == 1 {
			if _, body := rc.read(t); body != fmt.Sprintf("b%d", i) {
				t.Fatalf("exchange %d: %q", i, body)
			}
		}
	}
}

// TestFrontCloseIdleAndBusy: Listener.Close closes a connection that waits
// for its next request at once, and lets one being served answer first
// (with Connection: close) without Close itself waiting for it.
func TestFrontCloseIdleAndBusy(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	f := startFront(t, FastOptions{Handle: func(ctx context.Context, r *FastRequest, w *FastResponseWriter) {
		if string(r.Body) == "hold" {
			entered <- struct{}{}
			<-release
		}
		fastEcho(ctx, r, w)
	}}, nil)
	idle, busy := dialRaw(t, f.addr), dialRaw(t, f.addr)
	idle.send(t, invReq("x"))
	idle.read(t)
	busy.send(t, invReq("hold"))
	<-entered

	start := time.Now()
	f.l.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
	if _, err := idle.br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
	close(release)
	resp, body := busy.read(t)
	if body != "hold" || !resp.Close {
		t.Fatalf("busy connection: %q close=%v", body, resp.Close)
	}
	if _, err := busy.br.ReadByte(); err != io.EOF {
		t.Fatalf("busy connection after its answer: %v, want EOF", err)
	}
}
