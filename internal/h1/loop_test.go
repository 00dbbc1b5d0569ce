//go:build linux

package h1

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// loopFixture is a front listener with event loops whose LoopStart sends
// /endpoints/{name}/invocations to the upstream path /{name}, with a
// record of what the loop did.
type loopFixture struct {
	*front
	upstream string
	starts   atomic.Int64
	mu       sync.Mutex
	errs     []error      // Exchange.Err of every finished exchange
	deadline atomic.Int64 // the exchanges' time limit, in nanoseconds
}

// loopUpstream answers by path: /echo echoes, /chunked echoes in 7-byte
// chunks, /big?n= sends n bytes, /slow answers after 300 ms, /sleep not
// for 10 s, /status?c= answers c.
func loopUpstream(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
	switch r.URL.Path {
	case "/chunked":
		for i := 0; i < len(body); i += 7 {
			w.Write(body[i:min(i+7, len(body))])
			w.(http.Flusher).Flush()
		}
	case "/big":
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		w.Header().Set("Content-Length", strconv.Itoa(n))
		w.Write(bytes.Repeat([]byte("b"), n))
	case "/slow":
		time.Sleep(300 * time.Millisecond)
		w.Write([]byte("slow"))
	case "/sleep":
		select {
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
		}
	case "/status":
		c, _ := strconv.Atoi(r.URL.Query().Get("c"))
		w.WriteHeader(c)
		w.Write([]byte("model says no"))
	default:
		w.Write(body)
	}
}

func startLoopFront(t *testing.T, opts FastOptions) *loopFixture {
	t.Helper()
	up := httptest.NewServer(http.HandlerFunc(loopUpstream))
	t.Cleanup(up.Close)
	f := &loopFixture{upstream: strings.TrimPrefix(up.URL, "http://")}
	f.deadline.Store(int64(5 * time.Second))
	opts.LoopStart = func(req *FastRequest, x *Exchange) bool {
		name := strings.TrimSuffix(strings.TrimPrefix(string(req.Path), "/endpoints/"), "/invocations")
		if name == "decline" {
			return false
		}
		f.starts.Add(1)
		x.Addr, x.Host, x.Deadline = f.upstream, "upstream", time.Now().Add(time.Duration(f.deadline.Load()))
		x.Path = "/" + name
		if q := req.HeaderValue("X-Query"); q != nil {
			x.Path += "?" + string(q)
		}
		if name == "refused" {
			x.Addr = closedPort(t)
		}
		x.Header = AppendHeader(x.Header, "Content-Type", req.HeaderValue("Content-Type"))
		return true
	}
	opts.LoopFinish = func(x *Exchange) error {
		f.mu.Lock()
		f.errs = append(f.errs, x.Err)
		f.mu.Unlock()
		switch {
		case x.Err != nil && x.Retryable:
			return ErrLoopRetry
		case x.Err != nil:
			return x.Err
		case x.Status != 200:
			return errors.New("upstream status " + strconv.Itoa(x.Status) + ": " + string(x.Body))
		}
		x.RespHeader = AppendHeader(x.RespHeader, "Content-Type", x.ResponseHeader("Content-Type"))
		x.RespHeader = AppendHeader(x.RespHeader, "X-Path", "loop")
		return nil
	}
	opts.Fail = func(_ context.Context, _ *FastRequest, w *FastResponseWriter, err error) {
		w.WriteHeader(http.StatusBadGateway)
		w.AddHeader("X-Path", "fail")
		w.Write([]byte(err.Error()))
	}
	f.front = startFront(t, opts, nil)
	if f.l.loops == nil {
		t.Fatal("no event loops")
	}
	return f
}

func (f *loopFixture) lastErr() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.errs) == 0 {
		return nil
	}
	return f.errs[len(f.errs)-1]
}

func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func loopReq(name, body string, extra ...string) string {
	var b strings.Builder
	b.WriteString("POST /endpoints/" + name + "/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n")
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	return b.String()
}

// expect reads one response and checks its status, X-Path and body.
func (rc *rawClient) expect(t *testing.T, status int, path, body string) {
	t.Helper()
	resp, got := rc.read(t)
	if resp.StatusCode != status || resp.Header.Get("X-Path") != path || (body != "" && got != body) {
		t.Fatalf("got %d %s %q, want %d %s %q", resp.StatusCode, resp.Header.Get("X-Path"), got, status, path, body)
	}
}

// TestLoopServesKeptAliveConnections: the first request of a connection is
// served on its goroutine, the next ones by a loop, each response whole
// and in order, including a request that arrives in pieces.
func TestLoopServesKeptAliveConnections(t *testing.T) {
	f := startLoopFront(t, FastOptions{})
	rc := dialRaw(t, f.addr)
	rc.send(t, loopReq("echo", "first"))
	rc.expect(t, 200, "fast", "first")
	for i := range 20 {
		body := "request " + strconv.Itoa(i)
		rc.send(t, loopReq("echo", body))
		rc.expect(t, 200, "loop", body)
	}
	if got := f.starts.Load(); got != 20 {
		t.Fatalf("loop served %d requests, want 20", got)
	}
	// Headers, a pause, then the body.
	req := loopReq("echo", "in two pieces")
	cut := strings.Index(req, "\r\n\r\n") + 4
	rc.send(t, req[:cut])
	time.Sleep(50 * time.Millisecond)
	rc.send(t, req[cut:])
	rc.expect(t, 200, "loop", "in two pieces")
	// A chunked answer is decoded; a large one reaches a slow reader whole.
	rc.send(t, loopReq("chunked", strings.Repeat("0123456789", 100)))
	rc.expect(t, 200, "loop", strings.Repeat("0123456789", 100))
	const n = 8 << 20
	rc.send(t, loopReq("big", "", "X-Query: n="+strconv.Itoa(n)))
	time.Sleep(100 * time.Millisecond) // let the socket buffers fill
	resp, got := rc.read(t)
	if resp.StatusCode != 200 || len(got) != n || strings.Trim(got, "b") != "" {
		t.Fatalf("big answer: %d, %d bytes", resp.StatusCode, len(got))
	}
	rc.send(t, loopReq("echo", "after"))
	rc.expect(t, 200, "loop", "after")
}

// TestLoopHandsBackWhatItDoesNotServe: requests LoopStart declines, that
// fail, or that are not for the fast path at all leave the loop for a
// goroutine, which answers them as without loops.
func TestLoopHandsBackWhatItDoesNotServe(t *testing.T) {
	f := startLoopFront(t, FastOptions{})
	rc := dialRaw(t, f.addr)
	warm := func() {
		rc.send(t, loopReq("echo", "x"))
		resp, _ := rc.read(t)
		if resp.StatusCode != 200 {
			t.Fatalf("warm-up: %d", resp.StatusCode)
		}
	}
	warm()
	warm()
	rc.send(t, loopReq("decline", "declined"))
	rc.expect(t, 200, "fast", "declined")
	warm()
	rc.send(t, loopReq("status", "", "X-Query: c=503"))
	rc.expect(t, 502, "fail", "upstream status 503: model says no")
	warm()
	// A failed connection to the upstream is retried through Handle.
	rc.send(t, loopReq("refused", "retried"))
	rc.expect(t, 200, "fast", "retried")
	if err := f.lastErr(); err == nil {
		t.Fatal("refused upstream recorded no error")
	}
	warm()
	// Anything else goes to net/http, for good.
	rc.send(t, "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
	rc.expect(t, 200, "slow", "GET /ping ")
	rc.send(t, loopReq("echo", "after handover"))
	rc.expect(t, 200, "slow", "POST /endpoints/echo/invocations after handover")
}

// TestLoopTimeoutAndAbandon: an upstream that does not answer by the
// deadline fails the exchange with ErrLoopTimeout, and Abandon fails the
// ones in flight at once; the connection serves on afterwards.
func TestLoopTimeoutAndAbandon(t *testing.T) {
	f := startLoopFront(t, FastOptions{})
	f.deadline.Store(int64(200 * time.Millisecond))
	rc := dialRaw(t, f.addr)
	rc.send(t, loopReq("echo", "x"))
	rc.read(t)
	start := time.Now()
	rc.send(t, loopReq("sleep", "x"))
	rc.expect(t, 502, "fail", ErrLoopTimeout.Error())
	if d := time.Since(start); d < 150*time.Millisecond || d > 3*time.Second {
		t.Fatalf("timeout after %v, want about 200ms", d)
	}
	// The goroutine that answered the error gives the connection back.
	rc.send(t, loopReq("echo", "y"))
	rc.expect(t, 200, "loop", "y")

	f.deadline.Store(int64(time.Minute))
	rc.send(t, loopReq("sleep", "x"))
	time.Sleep(100 * time.Millisecond)
	f.l.Abandon()
	rc.expect(t, 502, "fail", ErrLoopAbandoned.Error())
}

// TestLoopIdleTimeoutAndShutdown: a loop closes a connection idle for the
// idle timeout, and Shutdown closes idle ones, waits for busy ones and
// stops the loops.
func TestLoopIdleTimeoutAndShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	f := startLoopFront(t, FastOptions{IdleTimeout: 300 * time.Millisecond})
	rc := dialRaw(t, f.addr)
	rc.send(t, loopReq("echo", "x"))
	rc.read(t)
	rc.send(t, loopReq("echo", "y"))
	rc.expect(t, 200, "loop", "y")
	start := time.Now()
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection: %v, want EOF", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("closed after %v", d)
	}

	idle, busy := dialRaw(t, f.addr), dialRaw(t, f.addr)
	for _, c := range []*rawClient{idle, busy} {
		c.send(t, loopReq("echo", "x"))
		c.read(t)
		c.send(t, loopReq("echo", "x"))
		c.expect(t, 200, "loop", "x")
	}
	// busy waits on an upstream that answers after a while.
	busy.send(t, loopReq("slow", ""))
	time.Sleep(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- f.l.Shutdown(ctx)
	}()
	busy.expect(t, 200, "loop", "slow")
	if _, err := idle.br.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection at shutdown: %v, want EOF", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	f.srv.Close()
	waitFor(t, 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before+3 {
			return errors.New(strconv.Itoa(n-before) + " goroutines more than before")
		}
		return nil
	})
}
