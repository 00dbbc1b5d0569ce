// Command loadgen is the closed-loop HTTP/1.1 load generator behind
// bench/realtime/run.sh. It drives one URL with N workers, each holding one
// keep-alive TCP connection and sending the same small POST body back to
// back, and prints one line of results:
//
//	rps=12345.6 p50_us=75.1 p99_us=210.4 n=61728 errors=0 total=74100
//
// n counts the measured requests, total every successful one including the
// warm-up (to divide a server's CPU time by).
//
// It speaks HTTP/1.1 directly on a net.Conn (a prebuilt request, a minimal
// response parser that handles Content-Length and chunked bodies) instead of
// using net/http's client, so that the generator itself costs as little CPU
// as possible: on a small machine it shares the cores with the server under
// test. Every response must be 200 with the request body echoed back,
// otherwise it counts as an error and the connection is replaced.
//
// Requests that start during the warm-up are not measured; throughput is
// the number of requests that started after the warm-up and finished
// before the end, divided by the measured duration. Every latency is kept
// (preallocated per worker), so p50/p99 are exact, not bucketed. Being
// closed-loop, the latencies do not include queueing a fixed-rate client
// would see (coordinated omission); the same applies to every target.
//
// With -sign KEY:SECRET the request carries a SigV4 signature for
// SageMaker (computed once, with the AWS SDK's signer, when the generator
// starts: the request never changes, and a signature stays valid for 15
// minutes), so the server verifies the same signature on every request.
//
// With -freeports N it prints N free loopback TCP ports and exits.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run() error {
	target := flag.String("url", "", "URL to POST to (http only)")
	conc := flag.Int("c", 1, "concurrent workers, one keep-alive connection each")
	dur := flag.Duration("d", 5*time.Second, "measured duration")
	warm := flag.Duration("warmup", time.Second, "warm-up before measuring")
	size := flag.Int("size", 64, "request body size in bytes")
	ctype := flag.String("content-type", "text/csv", "request Content-Type")
	freePorts := flag.Int("freeports", 0, "print this many free loopback ports and exit")
	sign := flag.String("sign", "", "ACCESS_KEY_ID:SECRET_ACCESS_KEY to sign the request with (SigV4, service sagemaker)")
	region := flag.String("region", "us-east-1", "region of the SigV4 credential scope")
	flag.Parse()

	if *freePorts > 0 {
		return printFreePorts(*freePorts)
	}
	if *target == "" || *conc < 1 || *dur <= 0 || *size < 1 {
		return errors.New("need -url, -c ≥ 1, -d > 0, -size ≥ 1")
	}
	u, err := url.Parse(*target)
	if err != nil {
		return err
	}
	if u.Scheme != "http" {
		return fmt.Errorf("only http URLs are supported, got %q", u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}

	body := makeBody(*size)
	req := buildRequest(u, *ctype, body, nil)
	if *sign != "" {
		id, secret, ok := strings.Cut(*sign, ":")
		if !ok {
			return errors.New("-sign wants ACCESS_KEY_ID:SECRET_ACCESS_KEY")
		}
		hdr, err := signature(u, *ctype, body, aws.Credentials{AccessKeyID: id, SecretAccessKey: secret}, *region)
		if err != nil {
			return err
		}
		req = buildRequest(u, *ctype, body, hdr)
	}

	start := time.Now()
	measureFrom := start.Add(*warm)
	measureTo := measureFrom.Add(*dur)

	results := make([]workerResult, *conc)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			results[i] = worker(addr, req, body, measureFrom, measureTo, *dur, *conc)
		})
	}
	wg.Wait()

	var all []int64
	errs := 0
	for _, r := range results {
		all = append(all, r.lat...)
		errs += r.errs
	}
	if len(all) == 0 {
		return fmt.Errorf("no successful requests (%d errors; last: %v)", errs, lastErr(results))
	}
	slices.Sort(all)
	total := 0
	for _, r := range results {
		total += r.ok
	}
	fmt.Printf("rps=%.1f p50_us=%.1f p99_us=%.1f n=%d errors=%d total=%d\n",
		float64(len(all))/dur.Seconds(),
		float64(percentile(all, 0.50))/1e3,
		float64(percentile(all, 0.99))/1e3,
		len(all), errs, total)
	if errs > 0 {
		fmt.Fprintf(os.Stderr, "loadgen: %d errors, last: %v\n", errs, lastErr(results))
	}
	return nil
}

// workerResult is what one worker measured.
type workerResult struct {
	lat  []int64 // nanoseconds, requests inside the measured window
	ok   int     // successful requests, warm-up included
	errs int
	last error
}

func lastErr(rs []workerResult) error {
	for _, r := range rs {
		if r.last != nil {
			return r.last
		}
	}
	return nil
}

// worker sends requests back to back on one connection until measureTo,
// reconnecting after any error.
func worker(addr string, req, want []byte, measureFrom, measureTo time.Time, dur time.Duration, workers int) workerResult {
	// Room for 150k req/s in total over the measured window, shared by
	// the workers, before the slice has to grow.
	res := workerResult{lat: make([]int64, 0, max(4096, int(dur.Seconds()*150_000)/workers))}
	var c *conn
	for {
		t0 := time.Now()
		if !t0.Before(measureTo) {
			break
		}
		if c == nil {
			nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				res.errs++
				res.last = err
				time.Sleep(10 * time.Millisecond)
				continue
			}
			c = newConn(nc)
			t0 = time.Now() // do not charge the dial to the first request
		}
		keep, err := c.roundTrip(req, want)
		t1 := time.Now()
		if err != nil {
			if t0.After(measureFrom) {
				res.errs++
			}
			res.last = err
			c.close()
			c = nil
			continue
		}
		res.ok++
		if !t0.Before(measureFrom) && !t1.After(measureTo) {
			res.lat = append(res.lat, int64(t1.Sub(t0)))
		}
		if !keep {
			c.close()
			c = nil
		}
	}
	if c != nil {
		c.close()
	}
	return res
}

// conn is one keep-alive HTTP/1.1 client connection.
type conn struct {
	nc  net.Conn
	br  *bufio.Reader
	buf []byte // response body
}

func newConn(nc net.Conn) *conn {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return &conn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10), buf: make([]byte, 0, 4096)}
}

func (c *conn) close() { _ = c.nc.Close() }

// roundTrip writes req and reads one response, checking that it is a 200
// whose body equals want. keep reports whether the connection may be reused.
func (c *conn) roundTrip(req, want []byte) (keep bool, err error) {
	if _, err := c.nc.Write(req); err != nil {
		return false, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return false, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return false, fmt.Errorf("bad status line %q", line)
	}
	keep = true
	contentLength := -1
	chunked := false
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return false, fmt.Errorf("bad header line %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if contentLength, err = strconv.Atoi(string(value)); err != nil {
				return false, fmt.Errorf("bad Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			if bytes.EqualFold(value, []byte("close")) {
				keep = false
			}
		}
	}
	c.buf = c.buf[:0]
	switch {
	case chunked:
		if err := c.readChunked(); err != nil {
			return false, err
		}
	case contentLength >= 0:
		c.buf = slices.Grow(c.buf, contentLength)[:contentLength]
		if _, err := io.ReadFull(c.br, c.buf); err != nil {
			return false, err
		}
	default:
		return false, errors.New("response has neither Content-Length nor chunked encoding")
	}
	if status != 200 {
		return false, fmt.Errorf("status %d: %.200s", status, c.buf)
	}
	if !bytes.Equal(c.buf, want) {
		return false, fmt.Errorf("body is not the echo of the request: %.200q", c.buf)
	}
	return keep, nil
}

// readChunked appends a chunked body to c.buf.
func (c *conn) readChunked() error {
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseInt(string(line), 16, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("bad chunk size %q", line)
		}
		if n == 0 {
			// Trailers, then the blank line.
			for {
				t, err := c.br.ReadSlice('\n')
				if err != nil {
					return err
				}
				if len(bytes.TrimRight(t, "\r\n")) == 0 {
					return nil
				}
			}
		}
		old := len(c.buf)
		c.buf = slices.Grow(c.buf, int(n))[:old+int(n)]
		if _, err := io.ReadFull(c.br, c.buf[old:]); err != nil {
			return err
		}
		if _, err := c.br.Discard(2); err != nil { // CRLF after the chunk
			return err
		}
	}
}

// makeBody returns a CSV-looking body of exactly size bytes.
func makeBody(size int) []byte {
	const row = "0.125,3.5,7,1.0e-3,42,0.5,9.75,2\n"
	b := make([]byte, size)
	for i := range b {
		b[i] = row[i%len(row)]
	}
	return b
}

// signature returns the SigV4 header fields (X-Amz-Date, Authorization)
// of the request buildRequest writes.
func signature(u *url.URL, ctype string, body []byte, creds aws.Credentials, region string) ([][2]string, error) {
	r, err := http.NewRequest(http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	r.Header.Set("Content-Type", ctype)
	r.Header.Set("Accept", ctype)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "sagemaker", region, time.Now()); err != nil {
		return nil, err
	}
	return [][2]string{{"X-Amz-Date", r.Header.Get("X-Amz-Date")}, {"Authorization", r.Header.Get("Authorization")}}, nil
}

// buildRequest returns the full request bytes, sent unchanged every time,
// with extra header fields.
func buildRequest(u *url.URL, ctype string, body []byte, extra [][2]string) []byte {
	path := u.RequestURI()
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\n", path)
	fmt.Fprintf(&b, "Host: %s\r\n", u.Host)
	fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
	fmt.Fprintf(&b, "Accept: %s\r\n", ctype)
	fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	for _, f := range extra {
		fmt.Fprintf(&b, "%s: %s\r\n", f[0], f[1])
	}
	b.WriteString("\r\n")
	b.Write(body)
	return b.Bytes()
}

// percentile returns the nearest-rank percentile p (0..1] of sorted xs.
func percentile(xs []int64, p float64) int64 {
	i := int(p*float64(len(xs))+0.999999) - 1
	i = max(0, min(i, len(xs)-1))
	return xs[i]
}

// printFreePorts prints n distinct free ports on 127.0.0.1, one per line.
func printFreePorts(n int) error {
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}
