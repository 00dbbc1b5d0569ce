package router

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/berth-io/berth/internal/fault"
	"github.com/berth-io/berth/internal/h1"
)

// The relay: one attempt to send a request to an explicit target (an
// instance's container address and a request-target) and read the
// answer's head. It knows nothing of variants, weights or retries.

// defaultPath is the request-target of SageMaker's container contract.
const defaultPath = "/invocations"

// instAddr is a container's base URL, parsed once. An instance's URL
// changes when the runtime restarts its process on a new port.
type instAddr struct {
	raw   string
	url   *url.URL // the /invocations URL; shared by requests, never changed
	path  string   // url's request-target, for the h1 client
	dial  string   // host:port, the address the h1 client dials
	label string   // host:port, for metrics and the Host header
}

func parseAddr(raw string) *instAddr {
	base := strings.TrimRight(raw, "/")
	u, err := url.Parse(base + defaultPath)
	if err != nil || u.Host == "" {
		// An instance with a broken URL is unreachable: requests to it
		// fail to connect and are retried elsewhere.
		u = &url.URL{Scheme: "http", Host: "invalid.invalid", Path: defaultPath}
	}
	dial := u.Host
	if u.Port() == "" {
		dial = net.JoinHostPort(u.Hostname(), "80")
	}
	return &instAddr{raw: raw, url: u, path: u.RequestURI(), dial: dial, label: u.Host}
}

// address returns the instance's current (primary container's) address,
// parsing its URL only when it changed.
func (st *instState) address() *instAddr {
	raw := st.inst.URL()
	if a := st.addr.Load(); a != nil && a.raw == raw {
		return a
	}
	a := parseAddr(raw)
	if old := st.addr.Swap(a); old != nil && old.dial != a.dial && st.moved != nil {
		// The runtime restarted the instance on a new port: the
		// connections to the old one are dead.
		st.moved(old.dial)
	}
	return a
}

// containerAddress returns the address of the named container of st ("":
// the primary), or nil when the instance has no such container.
func (st *instState) containerAddress(name string) *instAddr {
	if name == "" {
		return st.address()
	}
	mc, ok := st.inst.(Containers)
	if !ok {
		return nil
	}
	raw, ok := mc.ContainerURL(name)
	if !ok {
		return nil
	}
	if m := st.containers.Load(); m != nil {
		if a := (*m)[name]; a != nil && a.raw == raw {
			return a
		}
	}
	a := parseAddr(raw)
	for {
		old := st.containers.Load()
		next := map[string]*instAddr{name: a}
		var prev *instAddr
		if old != nil {
			for k, v := range *old {
				if k != name {
					next[k] = v
				}
			}
			prev = (*old)[name]
		}
		if st.containers.CompareAndSwap(old, &next) {
			if prev != nil && prev.dial != a.dial && st.moved != nil {
				st.moved(prev.dial)
			}
			return a
		}
	}
}

// appendDials appends the addresses the router has dialled for st: its
// primary container's and its other containers'.
func (st *instState) appendDials(dst []string) []string {
	if a := st.addr.Load(); a != nil {
		dst = append(dst, a.dial)
	}
	if m := st.containers.Load(); m != nil {
		for _, a := range *m {
			dst = append(dst, a.dial)
		}
	}
	return dst
}

// validPath reports whether p can be a request-target: an absolute path
// (with an optional query) of visible ASCII.
func validPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}

// forwardable reports whether a header of Request.Header may be sent: the
// relay writes the framing headers itself.
func forwardable(name string) bool {
	if name == "" {
		return false
	}
	for _, f := range framingHeaders {
		if strings.EqualFold(name, f) {
			return false
		}
	}
	return true
}

var framingHeaders = [...]string{"Host", "Content-Length", "Transfer-Encoding", "Connection", "Te", "Upgrade", "Trailer", "Keep-Alive"}

// answer is an instance's response head with its body unread, from either
// client.
type answer struct {
	status           int
	contentType      string
	customAttributes string
	contentLength    int64 // -1 when unknown
	body             io.ReadCloser
}

var headerPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// relay makes one attempt to send req to addr: through the h1 client on
// the caller's goroutine when the body's length is known, else through
// the Transport.
func (r *Router) relay(inv *invocation, addr *instAddr, req *Request, streamed *bodyReader) (answer, error) {
	if streamed != nil && req.ContentLength < 0 {
		return r.relayChunked(inv.ctx, addr, req, streamed)
	}
	hb := headerPool.Get().(*[]byte)
	h := (*hb)[:0]
	if req.ContentType != "" {
		h = h1.AppendHeader(h, "Content-Type", req.ContentType)
	}
	if req.Accept != "" {
		h = h1.AppendHeader(h, "Accept", req.Accept)
	}
	if req.CustomAttributes != "" {
		h = h1.AppendHeader(h, "X-Amzn-Sagemaker-Custom-Attributes", req.CustomAttributes)
	}
	if req.InferenceID != "" {
		h = h1.AppendHeader(h, "X-Amzn-Sagemaker-Inference-Id", req.InferenceID)
	}
	for _, f := range req.Header {
		if forwardable(f.Name) {
			h = h1.AppendHeader(h, f.Name, f.Value)
		}
	}
	path := addr.path
	if req.Path != "" {
		path = req.Path
	}
	hr := h1.Request{Method: http.MethodPost, Path: path, Host: addr.label, Header: h, Deadline: inv.deadline}
	switch {
	case streamed != nil:
		if req.ContentLength > 0 {
			hr.BodyReader, hr.BodyLength = streamed, req.ContentLength
		}
	default:
		hr.Body = req.Body
	}
	resp, err := r.upstream.Do(inv.parent, addr.dial, &hr)
	*hb = h[:0]
	headerPool.Put(hb)
	if err != nil {
		return answer{}, err
	}
	return answer{
		status:           resp.StatusCode,
		contentType:      string(resp.ContentType),
		customAttributes: string(resp.CustomAttributes),
		contentLength:    resp.ContentLength,
		body:             resp,
	}, nil
}

// relayChunked sends a streamed body of unknown length, which the h1
// client does not do, through net/http's Transport (chunked encoding).
func (r *Router) relayChunked(ctx context.Context, addr *instAddr, req *Request, streamed *bodyReader) (answer, error) {
	u := addr.url
	if req.Path != "" {
		var err error
		if u, err = url.ParseRequestURI(req.Path); err != nil {
			return answer{}, fault.Wrap(fault.Invalid, err, "The request path %q is not valid.", req.Path)
		}
		u.Scheme, u.Host = addr.url.Scheme, addr.url.Host
	}
	h := make(http.Header, 6+len(req.Header))
	if req.ContentType != "" {
		h["Content-Type"] = []string{req.ContentType}
	}
	if req.Accept != "" {
		h["Accept"] = []string{req.Accept}
	}
	if req.CustomAttributes != "" {
		h["X-Amzn-Sagemaker-Custom-Attributes"] = []string{req.CustomAttributes}
	}
	if req.InferenceID != "" {
		h["X-Amzn-Sagemaker-Inference-Id"] = []string{req.InferenceID}
	}
	for _, f := range req.Header {
		if forwardable(f.Name) {
			h.Add(f.Name, f.Value)
		}
	}
	hr := &http.Request{
		Method:        http.MethodPost,
		URL:           u,
		Host:          u.Host,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          streamed,
		ContentLength: -1,
	}
	if !r.chunked.Load() {
		r.chunked.Store(true)
	}
	resp, err := r.transport.RoundTrip(hr.WithContext(ctx))
	if err != nil {
		return answer{}, err
	}
	return answer{
		status:           resp.StatusCode,
		contentType:      resp.Header.Get("Content-Type"),
		customAttributes: resp.Header.Get("X-Amzn-Sagemaker-Custom-Attributes"),
		contentLength:    resp.ContentLength,
		body:             resp.Body,
	}, nil
}
