package h1

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"sync"
)

// HTTPHandler adapts an ordinary http.Handler to FastOptions.Handle, for
// rare paths (errors) that already exist as handlers. It builds an
// *http.Request with a header map and a minimal buffered ResponseWriter
// (no Flush, no Hijack), so it costs most of what the fast path saves; see
// BenchmarkAdapter.
func HTTPHandler(h http.Handler) func(ctx context.Context, req *FastRequest, w *FastResponseWriter) {
	return func(ctx context.Context, req *FastRequest, w *FastResponseWriter) {
		a := adapterPool.Get().(*adapter)
		defer func() {
			clear(a.hdr)
			a.w, a.body = nil, bytes.Reader{}
			adapterPool.Put(a)
		}()
		a.w = w
		a.status = 0
		u, err := url.ParseRequestURI(string(req.Target))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		header := make(http.Header, len(req.Header))
		var host string
		for _, f := range req.Header {
			k := http.CanonicalHeaderKey(string(f.Name))
			if k == "Host" {
				host = string(f.Value)
				continue
			}
			header[k] = append(header[k], string(f.Value))
		}
		a.body.Reset(req.Body)
		hr := &http.Request{
			Method:        string(req.Method),
			URL:           u,
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        header,
			Body:          io.NopCloser(&a.body),
			ContentLength: max(req.ContentLength, 0),
			Host:          host,
			RequestURI:    string(req.Target),
		}
		if req.RemoteAddr != nil {
			hr.RemoteAddr = req.RemoteAddr.String()
		}
		h.ServeHTTP(a, hr.WithContext(ctx))
		if a.status == 0 {
			a.WriteHeader(http.StatusOK)
		}
	}
}

var adapterPool = sync.Pool{New: func() any { return &adapter{hdr: make(http.Header)} }}

// adapter is the http.ResponseWriter HTTPHandler passes to the handler.
type adapter struct {
	w      *FastResponseWriter
	hdr    http.Header
	status int
	body   bytes.Reader
}

func (a *adapter) Header() http.Header { return a.hdr }

func (a *adapter) WriteHeader(status int) {
	if a.status != 0 {
		return
	}
	a.status = status
	a.w.WriteHeader(status)
	for k, vs := range a.hdr {
		switch k {
		case "Content-Length", "Connection", "Date", "Transfer-Encoding":
			continue
		}
		for _, v := range vs {
			a.w.AddHeader(k, v)
		}
	}
	if a.hdr.Get("Connection") == "close" {
		a.w.SetClose()
	}
}

func (a *adapter) Write(p []byte) (int, error) {
	if a.status == 0 {
		if a.hdr.Get("Content-Type") == "" && len(p) > 0 {
			a.hdr.Set("Content-Type", http.DetectContentType(p))
		}
		a.WriteHeader(http.StatusOK)
	}
	return a.w.Write(p)
}
