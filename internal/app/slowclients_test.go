package app_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/berth-io/berth/internal/testutil"
)

// pidFiles returns the pid files of the server's model instances:
// instance directory → "<pid> <start time>". A restart rewrites its file.
func pidFiles(t *testing.T, dataDir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dataDir, "instances", "*", "pid"))
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(filepath.Dir(f))] = strings.TrimSpace(string(b))
	}
	return out
}

// stalled is a client connection that sent part of a request, or
// nothing, and then went quiet.
type stalled struct {
	kind   string
	c      net.Conn
	closed chan struct{}
	err    error // how the read that waited for the server to close ended
	at     time.Time
}

// stall opens a connection, sends prefix and waits for the server to close
// it, counting it in open meanwhile.
func stall(t *testing.T, addr, kind, prefix string, open *atomic.Int64, wg *sync.WaitGroup) *stalled {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %d-th stalled connection: %v", open.Load(), err)
	}
	t.Cleanup(func() { c.Close() })
	if prefix != "" {
		if _, err := io.WriteString(c, prefix); err != nil {
			t.Fatal(err)
		}
	}
	s := &stalled{kind: kind, c: c, closed: make(chan struct{})}
	open.Add(1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(s.closed)
		c.SetReadDeadline(time.Now().Add(25 * time.Second))
		_, s.err = io.Copy(io.Discard, c)
		s.at = time.Now()
		open.Add(-1)
	}()
	return s
}

// TestStalledConnections: 1,100 connections that send headers and never
// the body, or nothing at all, neither stop berth from serving
// invocations and control-plane calls through the AWS SDK while they
// stall, nor make it restart its model instance; each is closed once its
// timeout passes.
func TestStalledConnections(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	const timeout = 4 * time.Second
	cfg.Server.ReadHeaderTimeout = timeout
	cfg.Server.BodyTimeout = timeout
	cfg.Server.ProgressTimeout = timeout
	cfg.Server.IdleTimeout = timeout
	s := startServer(t, cfg)
	s.deploy(t, "steady", nil, "", 1)
	s.upload(t, "stall", "seed", []byte("x"))
	pids := pidFiles(t, s.dataDir)
	if len(pids) != 1 {
		t.Fatalf("instances: %v", pids)
	}
	if got, err := s.invoke(t, "steady", "before"); err != nil || got != "before" {
		t.Fatalf("invoke before: %q %v", got, err)
	}

	addr := strings.TrimPrefix(s.url, "http://")
	kinds := []struct {
		kind, prefix string
		n            int
	}{
		// Control plane: net/http, a fixed body deadline.
		{"control plane body", "POST / HTTP/1.1\r\nHost: localhost\r\nX-Amz-Target: SageMaker.ListModels\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: 100\r\n\r\n{", 350},
		// S3 upload: net/http, a progress deadline.
		{"s3 put body", "PUT /stall/key HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000000\r\n\r\n", 300},
		// InvokeEndpoint: the fast path's body timeout.
		{"invocation body", "POST /endpoints/steady/invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nabc", 250},
		// Half a header block, and nothing at all.
		{"partial headers", "GET /stall/seed HTTP/1.1\r\nHost: localhost\r\n", 100},
		{"nothing", "", 100},
	}
	var open atomic.Int64
	var wg sync.WaitGroup
	var all []*stalled
	start := time.Now()
	for _, k := range kinds {
		for range k.n {
			all = append(all, stall(t, addr, k.kind, k.prefix, &open, &wg))
		}
	}
	if len(all) != 1100 {
		t.Fatalf("%d stalled connections", len(all))
	}
	t.Logf("1100 stalled connections opened in %s", time.Since(start))

	// While they stall: invocations and control-plane calls, on the SDK
	// client's connection and on new ones, over several health checks.
	ctx := context.Background()
	fresh, freshRT, _ := clients(s.url)
	for i := 0; time.Since(start) < timeout/3 || i < 5; i++ {
		want := fmt.Sprintf("during %d", i)
		if got, err := s.invoke(t, "steady", want); err != nil || got != want {
			t.Fatalf("invoke while stalled: %q %v", got, err)
		}
		if _, err := fresh.DescribeEndpoint(ctx, &sagemaker.DescribeEndpointInput{EndpointName: aws.String("steady")}); err != nil {
			t.Fatalf("DescribeEndpoint while stalled: %v", err)
		}
		freshRT.Options().HTTPClient.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	}
	if n := open.Load(); n < 1000 {
		t.Fatalf("only %d stalled connections still open after the calls (%s); the calls did not overlap the stall", n, time.Since(start))
	}

	// Each is closed after its timeout, not before it and not never.
	wg.Wait()
	for _, c := range all {
		var ne net.Error
		if errors.As(c.err, &ne) && ne.Timeout() {
			t.Fatalf("%s: berth never closed the connection (%s after the start)", c.kind, time.Since(start))
		}
		if c.err != nil && !errors.Is(c.err, syscall.ECONNRESET) {
			t.Errorf("%s: %v", c.kind, c.err)
		}
		if early := c.at.Sub(start); early < timeout/2 {
			t.Errorf("%s: closed after %s, before its timeout of %s", c.kind, early, timeout)
		}
	}
	t.Logf("all stalled connections closed %s after the start", time.Since(start))

	if got := pidFiles(t, s.dataDir); fmt.Sprint(got) != fmt.Sprint(pids) {
		t.Errorf("model instances changed while clients stalled: %v, was %v", got, pids)
	}
	if got, err := s.invoke(t, "steady", "after"); err != nil || got != "after" {
		t.Fatalf("invoke after: %q %v", got, err)
	}
	// The SDK clients' keep-alive connections go at the idle timeout.
	testutil.WaitFor(t, 4*timeout, func() error {
		if n := s.app.OpenConns(); n != 0 {
			return fmt.Errorf("%d client connections still open", n)
		}
		return nil
	})
}

// TestS3SlowReader: a client that never reads the answer to a large S3
// GET is cut by the write progress deadline; one that reads slowly but
// steadily, for many times that deadline, gets the whole object.
func TestS3SlowReader(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	const progress = 500 * time.Millisecond
	cfg.Server.ProgressTimeout = progress
	cfg.Server.WriteTimeout = progress // not what bounds an S3 download
	s := startServer(t, cfg)
	const size = 4 << 20 // far more than the socket buffers hold (see h1.FastOptions.NotSentLowat)
	obj := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	ctx := context.Background()
	if _, err := s.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("big")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("big"), Key: aws.String("obj"), Body: bytes.NewReader(obj)}); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(s.url, "http://")
	get := func(t *testing.T) (net.Conn, *bufio.Reader) {
		t.Helper()
		// A small receive buffer, so the object cannot hide in it.
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, "GET /big/obj HTTP/1.1\r\nHost: localhost\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(25 * time.Second))
		br := bufio.NewReaderSize(c, 64<<10)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || resp.ContentLength != size {
			t.Fatalf("GET: %s, length %d", resp.Status, resp.ContentLength)
		}
		return c, br
	}

	t.Run("stalled reader is cut", func(t *testing.T) {
		c, br := get(t)
		time.Sleep(6 * progress) // never reading
		n, err := io.Copy(io.Discard, br)
		if n >= size || err != nil && !errors.Is(err, syscall.ECONNRESET) {
			t.Fatalf("read %d of %d bytes after stalling (err %v): the server waited for the reader", n, size, err)
		}
		t.Logf("stalled reader got %d of %d bytes before the cut", n, size)
		c.Close()
	})
	t.Run("slow live uploader is not cut", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(25 * time.Second))
		fmt.Fprintf(c, "PUT /big/up HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n", size)
		start := time.Now()
		for off := 0; off < size; off += 64 << 10 {
			if _, err := c.Write(obj[off:min(off+64<<10, size)]); err != nil {
				t.Fatalf("upload cut after %d of %d bytes, %s: %v", off, size, time.Since(start), err)
			}
			time.Sleep(progress / 12)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("slow upload: %v %v", resp, err)
		}
		if took := time.Since(start); took < 4*progress {
			t.Errorf("the slow upload took %s; the test means it to outlast the progress deadline many times", took)
		}
		out, err := s.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("big"), Key: aws.String("up")})
		if err != nil || aws.ToInt64(out.ContentLength) != size {
			t.Fatalf("uploaded object: %+v %v", out, err)
		}
	})
	t.Run("stalled uploader is cut", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "PUT /big/stalled HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n", size)
		c.Write(obj[:1<<20])
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		io.Copy(io.Discard, c) // whatever berth answers, then its close
		if took := time.Since(start); took > 10*progress {
			t.Fatalf("a stalled upload held its connection for %s, progress deadline %s", took, progress)
		}
		if _, err := s.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("big"), Key: aws.String("stalled")}); err == nil {
			t.Error("a stalled upload left an object")
		}
	})
	t.Run("slow live reader is not", func(t *testing.T) {
		_, br := get(t)
		start := time.Now()
		buf := make([]byte, 64<<10)
		var n int64
		for n < size {
			m, err := io.ReadFull(br, buf[:min(len(buf), int(size-n))])
			n += int64(m)
			if err != nil {
				t.Fatalf("slow reader cut after %d of %d bytes, %s: %v", n, size, time.Since(start), err)
			}
			time.Sleep(progress / 12)
		}
		if took := time.Since(start); took < 4*progress {
			t.Errorf("the slow read took %s; the test means it to outlast the progress deadline many times", took)
		} else {
			t.Logf("slow reader took %s for %d bytes, progress deadline %s", took, size, progress)
		}
	})
}

// lineCounter counts log lines containing a marker.
type lineCounter struct {
	marker []byte
	n      atomic.Int64
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n.Add(int64(bytes.Count(p, c.marker)))
	return len(p), nil
}

// TestFailedRequestsLogBounded: a flood of requests that fail with
// errors logged at ERROR level, on the fast path (503: every variant has
// weight 0) and on net/http (S3 uploads cut short), writes a bounded
// number of log lines, not one each.
func TestFailedRequestsLogBounded(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	counter := &lineCounter{marker: []byte("level=ERROR")}
	logger := slog.New(slog.NewTextHandler(counter, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx := context.Background()
	s := startServerLogging(t, cfg, logger)
	s.createModel(t, "zero", nil, "")
	if _, err := s.sm.CreateEndpointConfig(ctx, &sagemaker.CreateEndpointConfigInput{
		EndpointConfigName: aws.String("zero"),
		ProductionVariants: []smtypes.ProductionVariant{{
			VariantName: aws.String("A"), ModelName: aws.String("zero"), InitialInstanceCount: aws.Int32(1),
			InitialVariantWeight: aws.Float32(0), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large,
		}, {
			VariantName: aws.String("B"), ModelName: aws.String("zero"), InitialInstanceCount: aws.Int32(1),
			InitialVariantWeight: aws.Float32(0), InstanceType: smtypes.ProductionVariantInstanceTypeMlM5Large,
		}},
	}); err != nil {
		t.Fatal(err)
	}
	s.createEndpoint(t, "zero", "zero")
	s.waitInService(t, "zero")
	s.upload(t, "flood", "seed", []byte("x"))
	before := counter.n.Load()

	client := &http.Client{Timeout: 10 * time.Second}
	const flood = 200
	for i := range flood {
		resp, err := client.Post(s.url+"/endpoints/zero/invocations", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("invocation %d: %s, want 503", i, resp.Status)
		}
		c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "PUT /flood/cut HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nabc")
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
		c.Close()
	}
	// One burst (10) per kind in one interval: the test runs within one.
	if n := counter.n.Load() - before; n < 2 || n > 20 {
		t.Errorf("%d failed invocations and %d cut uploads wrote %d ERROR lines, want 2 to 20", flood, flood, n)
	}
}
