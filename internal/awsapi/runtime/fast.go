package runtime

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/berth-io/berth/internal/awsapi"
	"github.com/berth-io/berth/internal/awsapi/sigv4"
	"github.com/berth-io/berth/internal/h1"
	"github.com/berth-io/berth/internal/router"
)

// The fast path: InvokeEndpoint served by internal/h1's front listener on
// the client connection's goroutine, without net/http's per-request
// goroutines, header maps and response writer. It takes only plain
// requests — POST /endpoints/{name}/invocations where name is letters,
// digits and hyphens, no query string, no X-Amz-Target, unsigned or signed
// for "sagemaker", a Content-Length within MaxPayloadBytes — and answers
// them exactly as ServeHTTP behind awsapi's handler would: the same
// headers, and the same error documents, rendered by the same code through
// h1.HTTPHandler. Everything else (the response stream, odd paths,
// chunked uploads, other services) stays on net/http. With a Verifier, the
// signature (and the body's hash) is checked first, as awsapi's handler
// checks it for the requests net/http serves.
//
// Three differences remain, none of them in what a client is told: a
// client that disconnects is noticed when the response is written, not
// while the model works; an answer larger than BufferBytes is buffered
// whole (at most the router's MaxResponseBytes) and sent with a
// Content-Length, where net/http streams it on, chunked when the model
// gave no length; and such an answer that breaks off is cut before any
// byte of the response is sent, where net/http has already sent the status
// line (the client sees a broken response either way).

// FastMatch reports whether the fast path serves req (see FastInvoke).
func (h *Handler) FastMatch(req *h1.FastRequest) bool {
	if string(req.Method) != http.MethodPost || len(req.Query) > 0 || req.ContentLength > h.opts.MaxPayloadBytes {
		return false
	}
	if _, ok := fastEndpoint(req.Path); !ok {
		return false
	}
	return awsapi.RoutesToRuntime(req.HeaderValue("X-Amz-Target"), req.HeaderValue("Authorization"))
}

// fastEndpoint returns the endpoint name of a path
// /endpoints/{name}/invocations whose name needs no unescaping.
func fastEndpoint(path []byte) ([]byte, bool) {
	const prefix, suffix = "/endpoints/", "/invocations"
	if len(path) <= len(prefix)+len(suffix) || string(path[:len(prefix)]) != prefix || string(path[len(path)-len(suffix):]) != suffix {
		return nil, false
	}
	name := path[len(prefix) : len(path)-len(suffix)]
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return nil, false
		}
	}
	return name, true
}

// FastInvoke serves an InvokeEndpoint request FastMatch accepted. ctx
// bounds the invocation (the caller cancels it to abandon requests in
// flight at shutdown).
func (h *Handler) FastInvoke(ctx context.Context, fr *h1.FastRequest, w *h1.FastResponseWriter) {
	received := time.Now()
	id := awsapi.NewRequestID()
	if h.opts.Verifier != nil {
		sr := sigv4.Request{Method: fr.Method, Path: fr.Path, Query: fr.Query, Header: fr.Header}
		if err := awsapi.VerifyBuffered(h.opts.Verifier, &sr, fr.Body); err != nil {
			h.fastFail(ctx, fr, w, id, awsapi.RuntimeAuthCatalog.Translate(err))
			return
		}
	}
	req := requestPool.Get().(*router.Request)
	defer func() {
		*req = router.Request{}
		requestPool.Put(req)
	}()
	*req = router.Request{
		Body:          fr.Body,
		ContentLength: int64(len(fr.Body)),
		BodyBorrowed:  true,
		MaxBodyBytes:  h.opts.MaxPayloadBytes,
		RequestID:     id,
		Received:      received,
	}
	endpoint, err := decodeInvocation(fr.Path, fastHeader{fr}, req)
	if err != nil {
		h.fastFail(ctx, fr, w, id, err)
		return
	}
	s, err := h.router.Open(ctx, endpoint, req)
	if err != nil {
		h.fastFail(ctx, fr, w, id, err)
		return
	}
	defer s.Close()
	body := w.Buffer()
	if s.ContentLength >= 0 {
		// Room for the body and the read that returns io.EOF.
		body = slices.Grow(body, int(min(s.ContentLength, h.opts.BufferBytes))+1)
	}
	for {
		if len(body) == cap(body) {
			body = slices.Grow(body, max(len(body), 4096))
		}
		n, err := s.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			if int64(len(body)) <= h.opts.BufferBytes {
				h.fastFail(ctx, fr, w, id, err)
				return
			}
			var me *router.ModelError
			if errors.As(err, &me) {
				h.logger.Warn("model response broke off after the response was committed", "request_id", id, "err", err)
			}
			panic(http.ErrAbortHandler) // close the connection, send nothing
		}
	}
	ct := s.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.AddHeader("X-Amzn-Requestid", id)
	w.AddHeader(hdrContentType, ct)
	w.AddHeader(hdrInvokedVariant, s.Variant)
	if s.CustomAttributes != "" {
		w.AddHeader(hdrCustomAttributes, s.CustomAttributes)
	}
	w.SetBody(body)
	// Answer before Close records metrics and hands off capture and shadow.
	w.Send()
}

// requestPool: the router's Request would escape to the heap on every
// invocation (it goes through the Invoker interface).
var requestPool = sync.Pool{New: func() any { return new(router.Request) }}

type fastErrKey struct{}

// fastFail answers err as ServeHTTP would, through awsapi's renderer.
func (h *Handler) fastFail(ctx context.Context, fr *h1.FastRequest, w *h1.FastResponseWriter, id string, err error) {
	ctx = context.WithValue(awsapi.WithRequestID(ctx, id), fastErrKey{}, err)
	h.fastErr(ctx, fr, w)
}

func (h *Handler) serveFastError(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amzn-RequestId", awsapi.RequestID(r.Context()))
	h.fail(w, r, r.Context().Value(fastErrKey{}).(error))
}
