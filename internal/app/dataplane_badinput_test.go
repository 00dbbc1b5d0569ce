package app_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/testutil"
)

// openFDs counts the process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd: ", err)
	}
	return len(ents)
}

// rawExchange writes raw bytes to addr and returns the status line of the
// answer ("" when the server closed without one).
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	io.WriteString(conn, raw)
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestDataplaneBadInputNoLeaks sends malformed, oversized and slow
// requests, and invokes models that hang, break off and send garbage:
// each gets its error, the server keeps serving, and goroutines and file
// descriptors come back to where they were.
func TestDataplaneBadInputNoLeaks(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.Limits.InvocationTimeout = 500 * time.Millisecond
	cfg.Server.BodyTimeout = 500 * time.Millisecond
	s := startServer(t, cfg)
	s.deploy(t, "good", nil, "", 1)
	s.deploy(t, "hangs", map[string]string{"TESTSERVER_SLEEP": "30s"}, "", 1)
	s.deploy(t, "garbage", map[string]string{"TESTSERVER_MODE": "garbage"}, "", 1)
	s.deploy(t, "breaks", map[string]string{"TESTSERVER_MODE": "stream-break"}, "", 1)
	addr := strings.TrimPrefix(s.url, "http://")
	client := &http.Client{Timeout: 30 * time.Second}
	post := func(path, body string) (int, string) {
		resp, err := client.Post(s.url+path, "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType")
	}
	round := func() {
		for _, tc := range []struct {
			path       string
			wantStatus int
			wantCode   string
		}{
			{"/endpoints/good/invocations", 200, ""},
			{"/endpoints/hangs/invocations", 424, "ModelError"},
			{"/endpoints/garbage/invocations", 424, "ModelError"},
			{"/endpoints/breaks/invocations", 424, "ModelError"},
			{"/endpoints/breaks/invocations-response-stream", 200, ""}, // the error is in the stream
			{"/endpoints/nowhere/invocations", 400, "ValidationError"},
			{"/endpoints/bad_name/invocations", 400, "ValidationError"},
		} {
			if status, code := post(tc.path, "x"); status != tc.wantStatus || code != tc.wantCode {
				t.Errorf("%s: %d %s, want %d %s", tc.path, status, code, tc.wantStatus, tc.wantCode)
			}
		}
		// A malformed header line: net/http answers 400 itself.
		if got := rawExchange(t, addr, "POST /endpoints/good/invocations HTTP/1.1\r\nHost: localhost\r\nno colon here\r\n\r\n"); !strings.Contains(got, " 400 ") {
			t.Errorf("malformed header: %q", got)
		}
		// An oversized Content-Length is refused before the body is read.
		if got := rawExchange(t, addr, "POST /endpoints/good/invocations HTTP/1.1\r\nHost: localhost\r\nContent-Length: 7340032\r\n\r\nabc"); !strings.Contains(got, " 400 ") {
			t.Errorf("oversized body: %q", got)
		}
		// A slow-loris body: 3 of 100 bytes, then nothing. The body read
		// deadline ends it.
		if got := rawExchange(t, addr, "POST /endpoints/good/invocations HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nabc"); got != "" && !strings.Contains(got, " 400 ") {
			t.Errorf("slow body: %q", got)
		}
	}
	round() // warm up: pooled connections, lazily started goroutines
	client.CloseIdleConnections()
	settle := func() (int, int) {
		runtime.GC()
		return runtime.NumGoroutine(), openFDs(t)
	}
	goroutines, fds := settle()

	for range 2 {
		round()
	}
	client.CloseIdleConnections()
	// Connections to the models are pooled (one per concurrent request),
	// so allow a few more fds than after the first round.
	testutil.WaitFor(t, 20*time.Second, func() error {
		g, f := settle()
		if g > goroutines+5 || f > fds+5 {
			return fmt.Errorf("goroutines %d (was %d), fds %d (was %d)", g, goroutines, f, fds)
		}
		return nil
	})
	if status, _ := post("/endpoints/good/invocations", "still here"); status != 200 {
		t.Errorf("server stopped serving: %d", status)
	}
}
