package h1

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/testutil"
)

// waitCond polls cond for up to 5 s.
func waitCond(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if !cond() {
			return errors.New(what)
		}
		return nil
	})
}

// TestFrontMaxConns: at the cap, further connections are not accepted
// (they wait in the accept queue) and are served as soon as a slot frees;
// connections handed to net/http hold their slot until net/http closes
// them.
func TestFrontMaxConns(t *testing.T) {
	f := startFront(t, FastOptions{MaxConns: 2, HeaderTimeout: time.Minute, IdleTimeout: time.Minute}, nil)

	fast := dialRaw(t, f.addr) // served on the fast path, then idle
	fast.send(t, invReq("a"))
	if _, body := fast.read(t); body != "a" {
		t.Fatalf("fast: %q", body)
	}
	handed := dialRaw(t, f.addr) // handed to net/http, then idle there
	handed.send(t, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := handed.read(t); resp.Header.Get("X-Path") != "slow" {
		t.Fatalf("handed: %v", resp.Header)
	}
	waitCond(t, "two connections open", func() bool { return f.l.OpenConns() == 2 })

	// The kernel completes the handshake, but nothing serves the request.
	waiting := dialRaw(t, f.addr)
	waiting.send(t, invReq("b"))
	waiting.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := waiting.br.ReadByte(); err == nil {
		t.Fatal("a connection beyond the cap was served")
	} else if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
		t.Fatalf("connection beyond the cap: %v, want a timeout (neither served nor closed)", err)
	}
	if n := f.l.OpenConns(); n != 2 {
		t.Fatalf("open connections = %d, want 2", n)
	}

	// Closing the handed-over connection frees its slot.
	handed.c.Close()
	waiting.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, body := waiting.read(t); body != "b" {
		t.Fatalf("waiting: %q", body)
	}
	fast.c.Close()
	waiting.c.Close()
	waitCond(t, "no connection open", func() bool { return f.l.OpenConns() == 0 })

	// With the slots free again, a burst of connections is served.
	for i := range 4 {
		c := dialRaw(t, f.addr)
		c.send(t, invReq(fmt.Sprint(i), "Connection: close\r\n"))
		if _, body := c.read(t); body != fmt.Sprint(i) {
			t.Fatalf("burst %d: %q", i, body)
		}
	}
	waitCond(t, "no connection open at the end", func() bool { return f.l.OpenConns() == 0 })
}

// TestFrontStalledBody: a client that sends an invocation's headers and
// never its body is cut after BodyTimeout.
func TestFrontStalledBody(t *testing.T) {
	f := startFront(t, FastOptions{BodyTimeout: 200 * time.Millisecond}, nil)
	rc := dialRaw(t, f.addr)
	rc.send(t, "POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
	start := time.Now()
	if _, err := rc.br.ReadByte(); err == nil || time.Since(start) > 3*time.Second {
		t.Fatalf("stalled body not cut: err=%v after %v", err, time.Since(start))
	}
	waitCond(t, "connection released", func() bool { return f.l.OpenConns() == 0 })
}
