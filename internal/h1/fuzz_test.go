package h1

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"
)

var requestSeeds = []string{
	"POST /endpoints/e/invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 3\r\n\r\nabc",
	"GET /ping HTTP/1.1\r\nHost: localhost:8080\r\n\r\n",
	"POST /a?b=c HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nz",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
	"POST / HTTP/1.1\nHost: x\nContent-Length: 0\n\n",
	"POST / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
	"POST / HTTP/1.0\r\nHost: x\r\n\r\n",
	"POST /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nHost : x\r\n\r\n",
	"POST / HTTP/1.1\r\nhost: a\r\nHOST: b\r\n\r\n",
	"POST * HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
	"P\x00ST / HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nX: \x80\xff\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nConnection: close, upgrade\r\n\r\n",
}

// FuzzParseRequest checks that parseRequestHead never panics and never
// takes a request that net/http would refuse or read differently.
func FuzzParseRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		end, _, err := findHeaderEnd(data, 0)
		if err != nil || end < 0 {
			return
		}
		var req FastRequest
		if !parseRequestHead(data[:end], &req) {
			return
		}
		hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			t.Fatalf("fast path takes a request net/http rejects (%v): %q", err, data)
		}
		if hr.Method != string(req.Method) || hr.RequestURI != string(req.Target) {
			t.Fatalf("method/target %q %q vs %q %q", hr.Method, hr.RequestURI, req.Method, req.Target)
		}
		if len(hr.TransferEncoding) != 0 {
			t.Fatalf("transfer-encoding %v taken", hr.TransferEncoding)
		}
		wantCL := max(req.ContentLength, 0)
		if hr.ContentLength != wantCL {
			t.Fatalf("content-length %d, net/http %d", wantCL, hr.ContentLength)
		}
		if hr.Host != string(req.HeaderValue("Host")) {
			t.Fatalf("host %q vs %q", req.HeaderValue("Host"), hr.Host)
		}
		for _, fl := range req.Header {
			vals := hr.Header.Values(string(fl.Name))
			if string(fl.Name) != "Host" && !equalFold(fl.Name, "host") && !slices.Contains(vals, string(fl.Value)) {
				t.Fatalf("header %q: %q not in %q", fl.Name, fl.Value, vals)
			}
		}
	})
}

var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
	"HTTP/1.0 200 OK\r\n\r\nuntil close",
	"HTTP/1.1 204\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 1\n\nz",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
	"HTTP/1.1 999 X\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Amzn-SageMaker-Custom-Attributes: a=b\r\nContent-Length: 2\r\n\r\nok",
}

// FuzzParseResponse checks that the response parser and body reader never
// panic and never accept a response that net/http would refuse or frame
// differently.
func FuzzParseResponse(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		end, _, err := findHeaderEnd(data, 0)
		if err != nil || end < 0 {
			return
		}
		var h respHead
		if parseResponseHead(data[:end], &h) != nil || h.status < 200 {
			return
		}
		hr, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), &http.Request{Method: "POST"})
		if err != nil {
			t.Fatalf("accepted a response net/http rejects (%v): %q", err, data)
		}
		if hr.StatusCode != h.status {
			t.Fatalf("status %d vs %d", h.status, hr.StatusCode)
		}
		if h.chunked != (len(hr.TransferEncoding) == 1 && hr.TransferEncoding[0] == "chunked") {
			t.Fatalf("chunked %v vs %v", h.chunked, hr.TransferEncoding)
		}
		if !h.chunked && h.contentLength >= 0 && hr.ContentLength != h.contentLength && h.status != 204 && h.status != 304 {
			t.Fatalf("content-length %d vs %d", h.contentLength, hr.ContentLength)
		}
		// Read the body with our reader from the bytes after the head.
		c1, c2 := net.Pipe()
		c2.Close()
		defer c1.Close()
		pc := &pconn{nc: c1, pool: &hostPool{max: 1, now: time.Now}, buf: append(make([]byte, 0, 4096), data...)}
		pc.sock.init(c1)
		pc.buf = pc.buf[:max(len(data), 4096)]
		pc.r, pc.w = end, len(data)
		resp := &Response{raw: append([]byte(nil), data[:end]...)}
		resp.setHead(&h, false)
		resp.c, resp.pc, resp.ctx = &Client{}, pc, context.Background()
		ours, ourErr := resp.ReadBody(nil, 1<<20)
		theirs, theirErr := io.ReadAll(hr.Body)
		if ourErr == nil && theirErr != nil {
			t.Fatalf("body accepted by us, net/http says %v: %q", theirErr, data)
		}
		if ourErr == nil && !bytes.Equal(ours, theirs) {
			t.Fatalf("body %q vs net/http %q", ours, theirs)
		}
	})
}
