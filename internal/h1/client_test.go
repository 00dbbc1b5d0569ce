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
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/testutil"
)

// echoHandler answers with the request body, its Content-Type and custom
// attributes, and honours a few test knobs in the query string.
func echoHandler(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	if ca := r.Header.Get("X-Amzn-SageMaker-Custom-Attributes"); ca != "" {
		w.Header().Set("X-Amzn-SageMaker-Custom-Attributes", ca)
	}
	q := r.URL.Query()
	if q.Get("close") != "" {
		w.Header().Set("Connection", "close")
	}
	if d := q.Get("sleep"); d != "" {
		dur, _ := time.ParseDuration(d)
		select {
		case <-time.After(dur):
		case <-r.Context().Done():
			return
		}
	}
	if q.Get("chunked") != "" {
		for i := 0; i < len(body); i += 7 {
			_, _ = w.Write(body[i:min(i+7, len(body))])
			w.(http.Flusher).Flush()
		}
		return
	}
	if n := q.Get("size"); n != "" {
		var size int
		fmt.Sscan(n, &size)
		body = bytes.Repeat([]byte("x"), size)
	}
	_, _ = w.Write(body)
}

// countingServer is an httptest server on 127.0.0.1:0 that counts new
// connections.
func countingServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func addrOf(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

func post(t *testing.T, c *Client, addr, path string, body []byte, limit int64) (*Response, []byte, error) {
	t.Helper()
	hdr := AppendHeader(nil, "Content-Type", "text/csv")
	resp, err := c.Do(context.Background(), addr, &Request{Path: path, Header: hdr, Body: body})
	if err != nil {
		return nil, nil, err
	}
	out, err := resp.ReadBody(nil, limit)
	return resp, out, err
}

func TestClientKeepAliveReuse(t *testing.T) {
	srv, conns := countingServer(t, echoHandler)
	c := NewClient(ClientOptions{})
	defer c.Close()
	for i := 0; i < 20; i++ {
		body := []byte(fmt.Sprintf("row,%d", i))
		resp, out, err := post(t, c, addrOf(srv), "/invocations", body, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 || !bytes.Equal(out, body) || string(resp.ContentType) != "text/csv" {
			t.Fatalf("got %d %q %q", resp.StatusCode, out, resp.ContentType)
		}
		if resp.ContentLength != int64(len(body)) || resp.Chunked || resp.ConnClose {
			t.Fatalf("framing: cl=%d chunked=%v close=%v", resp.ContentLength, resp.Chunked, resp.ConnClose)
		}
		resp.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
	if n := c.IdleConns(addrOf(srv)); n != 1 {
		t.Fatalf("%d idle, want 1", n)
	}
}

func TestClientChunked(t *testing.T) {
	srv, conns := countingServer(t, echoHandler)
	c := NewClient(ClientOptions{})
	defer c.Close()
	body := bytes.Repeat([]byte("0123456789"), 300)
	for i := 0; i < 3; i++ {
		resp, out, err := post(t, c, addrOf(srv), "/invocations?chunked=1", body, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if !resp.Chunked || resp.ContentLength != -1 || !bytes.Equal(out, body) {
			t.Fatalf("chunked=%v cl=%d len=%d", resp.Chunked, resp.ContentLength, len(out))
		}
		resp.Close()
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
	// Over the cap while chunked.
	resp, _, err := post(t, c, addrOf(srv), "/invocations?chunked=1", body, 100)
	if !errors.Is(err, ErrBodyTooLarge) {
		t.Fatalf("err = %v, want ErrBodyTooLarge", err)
	}
	resp.Close()
}

func TestClientStreamingRead(t *testing.T) {
	srv, _ := countingServer(t, echoHandler)
	c := NewClient(ClientOptions{})
	defer c.Close()
	body := bytes.Repeat([]byte("abc"), 10000)
	resp, err := c.Do(context.Background(), addrOf(srv), &Request{Path: "/?chunked=1", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	buf := make([]byte, 13)
	for {
		n, err := resp.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	resp.Close()
	if !bytes.Equal(got.Bytes(), body) {
		t.Fatalf("got %d bytes", got.Len())
	}
	if c.IdleConns(addrOf(srv)) != 1 {
		t.Fatal("connection not pooled after a streamed body")
	}
}

func TestClientConnectionClose(t *testing.T) {
	srv, conns := countingServer(t, echoHandler)
	c := NewClient(ClientOptions{})
	defer c.Close()
	for i := 0; i < 3; i++ {
		resp, _, err := post(t, c, addrOf(srv), "/?close=1", []byte("x"), 100)
		if err != nil {
			t.Fatal(err)
		}
		if !resp.ConnClose {
			t.Fatal("ConnClose not set")
		}
		resp.Close()
		if n := c.IdleConns(addrOf(srv)); n != 0 {
			t.Fatalf("%d idle after Connection: close", n)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
}

func TestClientRetriesStaleConnection(t *testing.T) {
	srv, conns := countingServer(t, echoHandler)
	c := NewClient(ClientOptions{})
	defer c.Close()
	if _, _, err := post(t, c, addrOf(srv), "/", []byte("a"), 100); err != nil {
		t.Fatal(err)
	}
	srv.CloseClientConnections() // the server drops the idle connection
	resp, out, err := post(t, c, addrOf(srv), "/", []byte("b"), 100)
	if err != nil {
		t.Fatalf("not retried: %v", err)
	}
	if string(out) != "b" {
		t.Fatalf("got %q", out)
	}
	resp.Close()
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestClientPeekDetectsClosedIdle(t *testing.T) {
	srv, _ := countingServer(t, echoHandler)
	c := NewClient(ClientOptions{})
	defer c.Close()
	if _, _, err := post(t, c, addrOf(srv), "/", []byte("a"), 100); err != nil {
		t.Fatal(err)
	}
	hp := c.pool(addrOf(srv))
	hp.mu.Lock()
	pc := hp.idle[0]
	hp.mu.Unlock()
	if !pc.alive() {
		t.Fatal("open connection reported closed")
	}
	srv.CloseClientConnections()
	testutil.WaitFor(t, 2*time.Second, func() error {
		if pc.alive() {
			return errors.New("closed connection still reported alive")
		}
		return nil
	})
}

func TestClientBodyCap(t *testing.T) {
	srv, _ := countingServer(t, echoHandler)
	c := NewClient(ClientOptions{})
	defer c.Close()
	resp, _, err := post(t, c, addrOf(srv), "/?size=1000000", []byte("a"), 1000)
	if !errors.Is(err, ErrBodyTooLarge) || !strings.Contains(err.Error(), "1000") {
		t.Fatalf("err = %v", err)
	}
	resp.Close()
	if c.IdleConns(addrOf(srv)) != 0 {
		t.Fatal("connection with an unread body pooled")
	}
	// Exactly at the cap is fine.
	resp, out, err := post(t, c, addrOf(srv), "/?size=1000", []byte("a"), 1000)
	if err != nil || len(out) != 1000 {
		t.Fatalf("len %d err %v", len(out), err)
	}
	resp.Close()
	// A large body within the cap.
	resp, out, err = post(t, c, addrOf(srv), "/?size=3000000", []byte("a"), 6<<20)
	if err != nil || len(out) != 3000000 {
		t.Fatalf("len %d err %v", len(out), err)
	}
	resp.Close()
}

func TestClientTimeoutAndCancel(t *testing.T) {
	srv, _ := countingServer(t, echoHandler)
	c := NewClient(ClientOptions{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Do(ctx, addrOf(srv), &Request{Path: "/?sleep=5s", Body: []byte("x")})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
	if IsDialError(err) {
		t.Fatal("timeout reported as dial error")
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel2)
	_, err = c.Do(ctx2, addrOf(srv), &Request{Path: "/?sleep=5s", Body: []byte("x")})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	// The pool still works afterwards, and a deadline-carrying context that
	// did not fire leaves the connection reusable.
	ctx3, cancel3 := context.WithTimeout(context.Background(), time.Minute)
	defer cancel3()
	resp, err := c.Do(ctx3, addrOf(srv), &Request{Path: "/", Body: []byte("ok")})
	if err != nil {
		t.Fatal(err)
	}
	out, err := resp.ReadBody(nil, 100)
	if err != nil || string(out) != "ok" {
		t.Fatalf("%q %v", out, err)
	}
	resp.Close()
	if c.IdleConns(addrOf(srv)) != 1 {
		t.Fatal("connection not pooled")
	}
}

func TestClientDialError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := NewClient(ClientOptions{})
	_, err = c.Do(context.Background(), addr, &Request{Path: "/"})
	if !IsDialError(err) {
		t.Fatalf("err = %v, want a DialError", err)
	}
}

func TestClientBodyReader(t *testing.T) {
	srv, _ := countingServer(t, echoHandler)
	c := NewClient(ClientOptions{})
	defer c.Close()
	body := bytes.Repeat([]byte("r"), 200000)
	resp, err := c.Do(context.Background(), addrOf(srv), &Request{Path: "/", BodyReader: bytes.NewReader(body), BodyLength: int64(len(body))})
	if err != nil {
		t.Fatal(err)
	}
	out, err := resp.ReadBody(nil, 1<<20)
	if err != nil || !bytes.Equal(out, body) {
		t.Fatalf("len %d err %v", len(out), err)
	}
	resp.Close()
	_, err = c.Do(context.Background(), addrOf(srv), &Request{Path: "/", BodyReader: strings.NewReader("short"), BodyLength: 10})
	if err == nil || !strings.Contains(err.Error(), "shorter") {
		t.Fatalf("err = %v", err)
	}
}

func TestClientHeaders(t *testing.T) {
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Amzn-SageMaker-Custom-Attributes", "a=b")
		w.Header().Set("X-Other", "v1")
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
	})
	c := NewClient(ClientOptions{})
	defer c.Close()
	resp, err := c.Do(context.Background(), addrOf(srv), &Request{Method: "GET", Path: "/"})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	if string(resp.CustomAttributes) != "a=b" || string(resp.ContentType) != "application/json" {
		t.Fatalf("%q %q", resp.CustomAttributes, resp.ContentType)
	}
	if string(resp.Header("x-other")) != "v1" {
		t.Fatalf("X-Other = %q", resp.Header("x-other"))
	}
	var names []string
	resp.VisitHeaders(func(n, _ []byte) { names = append(names, string(n)) })
	if len(names) < 4 {
		t.Fatalf("visited %v", names)
	}
}

// rawServer serves each accepted connection with fn.
func rawServer(t *testing.T, fn func(c net.Conn, br *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fn(c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String()
}

// readReq consumes one request with a Content-Length body.
func readReq(br *bufio.Reader) error {
	req, err := http.ReadRequest(br)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, req.Body)
	return err
}

func TestClientRawResponses(t *testing.T) {
	tests := []struct {
		name    string
		resp    string
		want    string
		status  int
		wantErr string
		pooled  bool
	}{
		{"until close", "HTTP/1.0 200 OK\r\n\r\nhello", "hello", 200, "", false},
		{"early hints", "HTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "ok", 200, "", true},
		{"no reason", "HTTP/1.1 204\r\n\r\n", "", 204, "", true},
		{"chunked ext trailer", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n", "abc", 200, "", true},
		{"cl and te", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", "", 0, "both", false},
		{"differing cl", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", "", 0, "differing", false},
		{"same cl twice", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", "abc", 200, "", true},
		{"bare lf", "HTTP/1.1 200 OK\nContent-Length: 3\n\nabc", "", 0, "bare lf", false},
		{"folded", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 3\r\n\r\nabc", "", 0, "malformed", false},
		{"gzip te", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "", 0, "transfer-encoding", false},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "", 200, "unexpected EOF", false},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "", 200, "chunk", false},
		{"garbage", "SSH-2.0-OpenSSH\r\n\r\n", "", 0, "malformed", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
				for readReq(br) == nil {
					if _, err := io.WriteString(c, tt.resp); err != nil {
						return
					}
					if !tt.pooled {
						return
					}
				}
			})
			c := NewClient(ClientOptions{})
			defer c.Close()
			resp, err := c.Do(context.Background(), addr, &Request{Path: "/", Body: []byte("q")})
			var out []byte
			if err == nil {
				if resp.StatusCode != tt.status {
					t.Fatalf("status %d", resp.StatusCode)
				}
				out, err = resp.ReadBody(nil, 1<<20)
				resp.Close()
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || string(out) != tt.want {
				t.Fatalf("got %q, %v", out, err)
			}
			if got := c.IdleConns(addr) == 1; got != tt.pooled {
				t.Fatalf("pooled = %v, want %v", got, tt.pooled)
			}
		})
	}
}

func TestClientHeaderLimit(t *testing.T) {
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if readReq(br) != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("a", 70<<10)+"\r\n\r\n")
	})
	c := NewClient(ClientOptions{})
	_, err := c.Do(context.Background(), addr, &Request{Path: "/"})
	if !errors.Is(err, ErrHeaderTooLarge) {
		t.Fatalf("err = %v", err)
	}
}

func TestClientConcurrent(t *testing.T) {
	srv, conns := countingServer(t, echoHandler)
	c := NewClient(ClientOptions{MaxIdlePerHost: 4})
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte
			for i := 0; i < 200; i++ {
				body := []byte(fmt.Sprintf("g%d-i%d-%s", g, i, strings.Repeat("z", i)))
				path := "/"
				if i%5 == 0 {
					path = "/?chunked=1"
				}
				resp, err := c.Do(context.Background(), addrOf(srv), &Request{Path: path, Body: body})
				if err != nil {
					errs <- err
					return
				}
				buf, err = resp.ReadBody(buf[:0], 1<<20)
				resp.Close()
				if err != nil || !bytes.Equal(buf, body) {
					errs <- fmt.Errorf("got %q, %v", buf, err)
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
	if n := c.IdleConns(addrOf(srv)); n > 4 {
		t.Fatalf("%d idle, over MaxIdlePerHost", n)
	}
	t.Logf("%d connections for 1600 requests", conns.Load())
}

// fakeClock is a time source the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestClientIdleTimeout(t *testing.T) {
	srv, conns := countingServer(t, echoHandler)
	clock := newFakeClock()
	c := NewClient(ClientOptions{IdleTimeout: 20 * time.Millisecond, Now: clock.Now})
	defer c.Close()
	post(t, c, addrOf(srv), "/", []byte("a"), 10)
	clock.Advance(10 * time.Millisecond)
	post(t, c, addrOf(srv), "/", []byte("a"), 10) // reused: not idle long enough to expire
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 (idle connection not reused before the timeout)", n)
	}
	clock.Advance(40 * time.Millisecond) // the pooled connection expires
	if _, _, err := post(t, c, addrOf(srv), "/", []byte("a"), 10); err != nil {
		t.Fatal(err)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (expired idle connection reused)", n)
	}
}

func TestClientRequestDeadline(t *testing.T) {
	srv, _ := countingServer(t, echoHandler)
	c := NewClient(ClientOptions{})
	defer c.Close()
	start := time.Now()
	_, err := c.Do(context.Background(), addrOf(srv), &Request{Path: "/?sleep=5s", Body: []byte("x"),
		Deadline: time.Now().Add(100 * time.Millisecond)})
	if !errors.Is(err, os.ErrDeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
	// The earlier of the context's deadline and the request's applies.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = c.Do(ctx, addrOf(srv), &Request{Path: "/?sleep=5s", Body: []byte("x"), Deadline: time.Now().Add(time.Hour)})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	// A deadline that does not pass leaves the connection reusable.
	resp, err := c.Do(context.Background(), addrOf(srv), &Request{Path: "/", Body: []byte("ok"), Deadline: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := resp.ReadBody(nil, 100); err != nil || string(out) != "ok" {
		t.Fatalf("%q %v", out, err)
	}
	resp.Close()
	if c.IdleConns(addrOf(srv)) != 1 {
		t.Fatal("connection not pooled")
	}
}

// TestResponseSetDeadline: a body that takes longer than the exchange's
// deadline is read to the end once SetDeadline moved it, and one that
// takes longer than the moved deadline fails.
func TestResponseSetDeadline(t *testing.T) {
	slowBody := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		time.Sleep(300 * time.Millisecond)
		_, _ = w.Write([]byte("ok"))
	}
	srv, _ := countingServer(t, slowBody)
	c := NewClient(ClientOptions{})
	defer c.Close()
	do := func() *Response {
		resp, err := c.Do(context.Background(), addrOf(srv), &Request{Path: "/", Body: []byte("x"),
			Deadline: time.Now().Add(150 * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := do()
	resp.SetDeadline(time.Now().Add(5 * time.Second))
	if out, err := resp.ReadBody(nil, 100); err != nil || string(out) != "ok" {
		t.Fatalf("%q %v", out, err)
	}
	resp.Close()
	resp = do()
	resp.SetDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := resp.ReadBody(nil, 100); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	resp.Close()
}

// TestClientAbort: Abort interrupts an exchange waiting for its answer and
// one that is reading a body, and makes later calls fail.
func TestClientAbort(t *testing.T) {
	release := make(chan struct{})
	hang := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("body") != "" {
			w.Header().Set("Content-Length", "10")
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}
	srv, _ := countingServer(t, hang)
	defer close(release)
	c := NewClient(ClientOptions{})
	errs := make(chan error, 2)
	go func() {
		_, err := c.Do(context.Background(), addrOf(srv), &Request{Path: "/", Body: []byte("x")})
		errs <- err
	}()
	resp, err := c.Do(context.Background(), addrOf(srv), &Request{Path: "/?body=1", Body: []byte("x")})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := resp.ReadBody(nil, 100)
		errs <- err
	}()
	time.Sleep(100 * time.Millisecond) // both are blocked in a read by now
	start := time.Now()
	c.Abort()
	for range 2 {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatal("an exchange survived Abort")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Abort did not interrupt the exchanges")
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Abort took %v", d)
	}
	resp.Close()
	if _, err := c.Do(context.Background(), addrOf(srv), &Request{Path: "/", Body: []byte("x")}); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("Do after Abort: %v", err)
	}
}

// TestClientReusesConnectionPastItsDeadline: a connection pooled with the
// last exchange's deadline still set is reused after that deadline
// passed while it sat idle.
func TestClientReusesConnectionPastItsDeadline(t *testing.T) {
	srv, conns := countingServer(t, echoHandler)
	clock := newFakeClock()
	c := NewClient(ClientOptions{Now: clock.Now})
	defer c.Close()
	for i := range 2 {
		deadline := time.Now().Add(50 * time.Millisecond)
		resp, err := c.Do(context.Background(), addrOf(srv), &Request{Path: "/", Body: []byte("x"), Deadline: deadline})
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if _, err := resp.ReadBody(nil, 10); err != nil {
			t.Fatal(err)
		}
		resp.Close()
		// The socket's deadline passes in real time; the idle age that
		// makes the pool check the connection is the client's clock.
		time.Sleep(time.Until(deadline) + 10*time.Millisecond)
		clock.Advance(2 * peekAfter)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
}

func TestClientCloseHost(t *testing.T) {
	srv, conns := countingServer(t, echoHandler)
	c := NewClient(ClientOptions{})
	defer c.Close()
	addr := addrOf(srv)
	resp, _, err := post(t, c, addr, "/invocations", []byte("a"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	resp.Close()
	if n := c.IdleConns(addr); n != 1 {
		t.Fatalf("%d idle, want 1", n)
	}
	c.CloseHost(addr)
	if n := c.IdleConns(addr); n != 0 {
		t.Fatalf("%d idle after CloseHost, want 0", n)
	}
	// The address works again, on a new connection.
	resp, _, err = post(t, c, addr, "/invocations", []byte("b"), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	resp.Close()
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}
