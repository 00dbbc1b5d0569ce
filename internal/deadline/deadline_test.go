//go:build linux

package deadline

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

func serve(t *testing.T, h http.Handler, opts Options) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(Handler(h, opts))
	srv.Listener = lowatListener{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// lowatListener sets TCP_NOTSENT_LOWAT on accepted connections, as
// berth's front listener does, so that write progress shows in small
// steps rather than in thirds of an autotuned send buffer.
type lowatListener struct{ net.Listener }

func (l lowatListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		raw, _ := c.(syscall.Conn).SyscallConn()
		raw.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, 25, 128<<10) })
	}
	return c, err
}

func rawRequest(t *testing.T, addr, req string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, req)
	return c, bufio.NewReader(c)
}

// A body that stops arriving is cut after Body.
func TestFixedBodyStall(t *testing.T) {
	readErr := make(chan error, 1)
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
	}), Options{Body: 200 * time.Millisecond})
	rawRequest(t, addr, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
	select {
	case err := <-readErr:
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Fatalf("stalled body read: %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stalled body not cut")
	}
}

// Once the body is in, or when there is none, the handler may take longer
// than Body: no read deadline may be left to expire under net/http's
// background read, which would cancel the request's context.
func TestSlowHandlerAfterBody(t *testing.T) {
	const body = 100 * time.Millisecond
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b []byte
		if r.Method == http.MethodPost { // a GET handler need not touch its empty body
			b, _ = io.ReadAll(r.Body)
		}
		select {
		case <-time.After(4 * body):
		case <-r.Context().Done():
			http.Error(w, "cancelled", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "done %s", b)
	}), Options{Body: body, Write: time.Second})
	for _, req := range []string{
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		_, br := rawRequest(t, addr, req)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(got), "done") {
			t.Errorf("%q: %s %q", req, resp.Status, got)
		}
	}
}

// Under Stream, a write to a client that does not read is cut after
// Progress, and a long response to one that reads steadily is not; a
// keep-alive connection serves its next request after either kind.
func TestProgressWrites(t *testing.T) {
	// A second, not less: under -race on a loaded 2-core machine the
	// writing goroutine can be starved for a few hundred milliseconds.
	const progress = time.Second
	const size = 2 << 20
	chunk := make([]byte, 64<<10)
	writeErr := make(chan error, 1)
	addr := serve(t, Stream(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/small" {
			io.WriteString(w, "small")
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(size))
		var err error
		for n := 0; n < size && err == nil; n += len(chunk) {
			_, err = w.Write(chunk)
		}
		writeErr <- err
	}), false, true), Options{Progress: progress, Write: progress})

	// Stalled: never read.
	c, _ := rawRequest(t, addr, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	c.(*net.TCPConn).SetReadBuffer(4096)
	select {
	case err := <-writeErr:
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Fatalf("write to a stalled reader: %v, want a timeout", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("write to a stalled reader not cut")
	}

	// Slow but steady: the response outlasts Progress and Write many times.
	_, br := rawRequest(t, addr, "GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /small HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	buf := make([]byte, 64<<10)
	var n int
	for n < size {
		m, err := io.ReadFull(resp.Body, buf[:min(len(buf), size-n)])
		n += m
		if err != nil {
			t.Fatalf("slow reader cut after %d bytes, %s: %v", n, time.Since(start), err)
		}
		time.Sleep(progress / 8)
	}
	if err := <-writeErr; err != nil {
		t.Fatalf("handler write: %v", err)
	}
	t.Logf("slow read of %d bytes took %s, progress deadline %s", size, time.Since(start), progress)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("next request on the connection: %v", err)
	}
	if got, _ := io.ReadAll(resp.Body); string(got) != "small" {
		t.Errorf("next response: %q", got)
	}
}
