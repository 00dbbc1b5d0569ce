package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/testserver/testserverbin"
)

// TestStalledClientsUnderFDLimit runs the real berth binary with the
// common default open-file limit of 1024 and opens 1,100 connections that
// send headers and never the body, or nothing. berth must keep
// descriptors for itself: its model instance is neither restarted nor
// killed, invocations keep being served while the clients stall, and
// every stalled connection is closed after its timeout.
func TestStalledClientsUnderFDLimit(t *testing.T) {
	bin := buildBerth(t)
	const timeout = 2 * time.Second
	cfgFile := writeConfig(t, fmt.Sprintf(`images:
  test/echo:1:
    command: [%q]
runtime:
  health_interval: 100ms
  run_as_user: "%[3]d:%[4]d"
server:
  read_header_timeout: %[2]s
  body_timeout: %[2]s
  progress_timeout: %[2]s
  idle_timeout: 1m
`, testserverbin.Build(t), timeout, os.Getuid(), os.Getgid()))
	dataDir := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)

	// The limit is set in a shell that then becomes berth: the test
	// process keeps its own.
	logs := launch(t, exec.Command("/bin/sh", "-c", `ulimit -n 1024 && exec "$0" "$@"`, bin, "serve", "--listen", addr, "--data-dir", dataDir, "--config", cfgFile))
	waitPing(t, addr)
	if !strings.Contains(logs.String(), "open_file_limit=1024") {
		t.Fatalf("berth did not run under the limit:\n%s", logs.String())
	}

	url := "http://" + addr
	sm, rt, _ := sdkClients(url)
	deployEndpoint(t, sm, "test/echo:1", "", 1)
	invokeExpect(t, rt, "e", "x")
	// At the connection cap, new connections wait in the accept queue
	// behind the stalled ones until timeouts free their slots, so the
	// invocations during the stall go through a connection opened before
	// it (a raw one: the SDK's transport may redial at any time).
	kept, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer kept.Close()
	keptR := bufio.NewReader(kept)
	invokeKept := func() {
		t.Helper()
		kept.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(kept, "POST /endpoints/e/invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\ny")
		resp, err := http.ReadResponse(keptR, nil)
		if err != nil {
			t.Fatalf("invoke on the kept connection: %v", err)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK || string(body) != "y" {
			t.Fatalf("invoke on the kept connection: %s %q %v", resp.Status, body, err)
		}
	}
	invokeKept()
	pidFile := func() string {
		files, _ := filepath.Glob(filepath.Join(dataDir, "instances", "*", "pid"))
		if len(files) != 1 {
			t.Fatalf("pid files: %v", files)
		}
		b, _ := os.ReadFile(files[0])
		return string(b)
	}
	pid := pidFile()

	var open atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var never []string
	start := time.Now()
	for i := range 1100 {
		prefix := ""
		switch i % 3 {
		case 0:
			prefix = "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: SageMaker.ListModels\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 100\r\n\r\n{"
		case 1:
			prefix = "POST /endpoints/e/invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nabc"
		}
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatalf("dial stalled connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
		io.WriteString(c, prefix)
		open.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer open.Add(-1)
			c.SetReadDeadline(time.Now().Add(25 * time.Second))
			_, err := io.Copy(io.Discard, c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				mu.Lock()
				never = append(never, fmt.Sprintf("connection %d", i))
				mu.Unlock()
			}
		}()
	}
	t.Logf("1100 stalled connections opened in %s", time.Since(start))

	// Over many health checks (every 100ms; three failures in a row
	// restart an instance), invocations go on.
	for i := 0; time.Since(start) < timeout*3/4 || i < 5; i++ {
		invokeKept()
	}
	if n := open.Load(); n < 1000 {
		t.Fatalf("only %d stalled connections still open after the invocations", n)
	}
	if got := pidFile(); got != pid {
		t.Fatalf("model instance restarted while clients stalled: pid file %q, was %q", got, pid)
	}
	wg.Wait()
	if len(never) > 0 {
		t.Fatalf("%d stalled connections never closed by berth, e.g. %s", len(never), never[0])
	}
	t.Logf("all stalled connections closed %s after the start", time.Since(start))

	if got := pidFile(); got != pid {
		t.Errorf("model instance restarted while clients stalled: pid file %q, was %q", got, pid)
	}
	invokeKept()
	_, rt2, _ := sdkClients(url) // new connections are served again
	invokeExpect(t, rt2, "e", "x")
	if out := logs.String(); strings.Contains(out, "instance down") || strings.Contains(out, "too many open files") && !strings.Contains(out, "health checks skipped") {
		t.Errorf("berth ran out of descriptors or lost its instance; see its output")
	}
}
