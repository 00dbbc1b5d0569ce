// Package runtime speaks the SageMaker Runtime protocol (restJson1):
// POST /endpoints/{EndpointName}/invocations (InvokeEndpoint) and
// /invocations-response-stream (InvokeEndpointWithResponseStream), relaying
// each invocation through the router. Request bodies are streamed to the
// model, never buffered whole; answers are relayed as they come, as raw
// bytes or as AWS event-stream PayloadPart frames.
//
// Plain InvokeEndpoint requests also have a fast path for internal/h1's
// front listener (FastMatch, FastInvoke): the body arrives whole (at most
// MaxPayloadBytes) and the answer is buffered, all on the connection's
// goroutine, with the same responses and errors as ServeHTTP. Both paths
// decode a request in one function, decodeInvocation (decode.go), over a
// header lookup each satisfies: a header berth learns is one entry in its
// table. Headers of features berth does not serve yet (TargetModel,
// TargetContainerHostname, InferenceComponentName, SessionId,
// EnableExplanations) are refused with a ValidationError naming them,
// rather than ignored.
package runtime

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berth-io/berth/internal/awsapi"
	"github.com/berth-io/berth/internal/awsapi/sigv4"
	"github.com/berth-io/berth/internal/fault"
	"github.com/berth-io/berth/internal/h1"
	"github.com/berth-io/berth/internal/router"
)

// Invoker is what the handler needs of the router.
type Invoker interface {
	Open(ctx context.Context, endpoint string, req *router.Request) (*router.Stream, error)
}

var _ Invoker = (*router.Router)(nil)

// Options configures a Handler.
type Options struct {
	// MaxPayloadBytes bounds request bodies (SageMaker: 6 MiB).
	MaxPayloadBytes int64
	// BodyTimeout bounds the time a client may take to send its request
	// body, so slow clients cannot hold connections (default 60 s).
	BodyTimeout time.Duration
	// BufferBytes is how much of an InvokeEndpoint answer is held before
	// the response is committed: a model failing within it gets a proper
	// ModelError; a larger answer is streamed on and a failure past it
	// aborts the connection (default 1 MiB).
	BufferBytes int64
	// Verifier, when set, checks the SigV4 signature of requests the fast
	// path serves (the rest were checked by awsapi's handler).
	Verifier *sigv4.Verifier
	Logger   *slog.Logger
}

// Handler serves the runtime API.
type Handler struct {
	router Invoker
	opts   Options
	logger *slog.Logger
	// fastErr renders the fast path's errors with fail (see fast.go).
	fastErr func(ctx context.Context, req *h1.FastRequest, w *h1.FastResponseWriter)
}

// New returns the runtime handler.
func New(r Invoker, opts Options) *Handler {
	if opts.MaxPayloadBytes <= 0 {
		opts.MaxPayloadBytes = 6 << 20
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = 60 * time.Second
	}
	if opts.BufferBytes <= 0 {
		opts.BufferBytes = 1 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{router: r, opts: opts, logger: opts.Logger.With("component", "runtime-api")}
	h.fastErr = h1.HTTPHandler(http.HandlerFunc(h.serveFastError))
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := router.Request{
		ContentLength: r.ContentLength,
		MaxBodyBytes:  h.opts.MaxPayloadBytes,
		RequestID:     awsapi.RequestID(r.Context()),
		Received:      time.Now(),
	}
	if r.Method != http.MethodPost {
		h.fail(w, r, errUnknownOperation)
		return
	}
	endpoint, err := decodeInvocation(r.URL.EscapedPath(), r.Header, &req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.invoke(w, r, endpoint, &req)
}

// Header names, canonical so setting them costs no canonicalisation.
const (
	hdrContentType      = "Content-Type"
	hdrContentLength    = "Content-Length"
	hdrCustomAttributes = "X-Amzn-Sagemaker-Custom-Attributes"
	hdrTargetVariant    = "X-Amzn-Sagemaker-Target-Variant"
	hdrInferenceID      = "X-Amzn-Sagemaker-Inference-Id"
	hdrStreamAccept     = "X-Amzn-Sagemaker-Accept"
	hdrStreamType       = "X-Amzn-Sagemaker-Content-Type"
	hdrInvokedVariant   = "X-Amzn-Invoked-Production-Variant"
)

func (h *Handler) invoke(w http.ResponseWriter, r *http.Request, endpoint string, req *router.Request) {
	if r.ContentLength > h.opts.MaxPayloadBytes {
		h.fail(w, r, router.TooLarge(h.opts.MaxPayloadBytes))
		return
	}
	// A client gets BodyTimeout to send its body; the deadline is lifted
	// as soon as the body is in, so a slow model is not cut off.
	rc := http.NewResponseController(w)
	body := &clientBody{r: r.Body, rc: rc}
	if r.ContentLength != 0 {
		rc.SetReadDeadline(req.Received.Add(h.opts.BodyTimeout))
		req.BodyReader = body
	}
	s, err := h.router.Open(r.Context(), endpoint, req)
	if err != nil {
		if _, inMemory := r.Body.(awsapi.BufferedBody); req.BodyReader != nil && !body.cleared && !inMemory {
			// The body was not read to its end: do not wait for the rest
			// (net/http would, to keep the connection), close instead.
			w.Header().Set("Connection", "close")
			rc.SetReadDeadline(time.Now())
		}
		h.fail(w, r, err)
		return
	}
	body.clear()
	defer s.Close()
	if req.Stream {
		h.relayStream(w, rc, s)
		return
	}
	h.relay(w, r, s)
}

// relay answers InvokeEndpoint: the model's answer is held up to
// BufferBytes, so a model that fails within it gets a ModelError, then
// streamed.
func (h *Handler) relay(w http.ResponseWriter, r *http.Request, s *router.Stream) {
	buf := router.GetBuffer()
	defer router.PutBuffer(buf)
	lr := io.LimitedReader{R: s, N: h.opts.BufferBytes + 1}
	if _, err := buf.ReadFrom(&lr); err != nil {
		h.fail(w, r, err)
		return
	}
	complete := lr.N > 0
	hd := w.Header()
	ct := s.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	hd[hdrContentType] = []string{ct}
	hd[hdrInvokedVariant] = []string{s.Variant}
	if s.CustomAttributes != "" {
		hd[hdrCustomAttributes] = []string{s.CustomAttributes}
	}
	switch {
	case complete:
		hd[hdrContentLength] = []string{strconv.Itoa(buf.Len())}
	case s.ContentLength >= 0:
		hd[hdrContentLength] = []string{strconv.FormatInt(s.ContentLength, 10)}
	}
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(buf.Bytes()); err != nil || complete {
		return
	}
	cb := router.GetCopyBuf()
	defer router.PutCopyBuf(cb)
	if _, err := io.CopyBuffer(w, onlyReader{s}, *cb); err != nil {
		var me *router.ModelError
		if errors.As(err, &me) {
			h.logger.Warn("model response broke off after the response was committed", "request_id", awsapi.RequestID(r.Context()), "err", err)
			// The status is sent: the only way left to tell the client is
			// to cut the connection rather than end a short body cleanly.
			panic(http.ErrAbortHandler)
		}
	}
}

// onlyReader hides a reader's other methods, so io.CopyBuffer uses the
// pooled buffer rather than a WriterTo or ReaderFrom.
type onlyReader struct{ io.Reader }

// clientBody is the client's request body under a read deadline, lifted
// at EOF.
type clientBody struct {
	r       io.Reader
	rc      *http.ResponseController
	cleared bool
}

func (b *clientBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		b.clear()
	}
	return n, err
}

func (b *clientBody) clear() {
	if !b.cleared {
		b.cleared = true
		b.rc.SetReadDeadline(time.Time{})
	}
}

func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var me *router.ModelError
	if errors.As(err, &me) {
		err = &awsapi.Error{
			Status:  http.StatusFailedDependency,
			Code:    "ModelError",
			Message: me.Error(),
			Extra: map[string]any{
				"OriginalStatusCode": me.OriginalStatus,
				"OriginalMessage":    me.OriginalBody,
			},
			Cause: err,
		}
	}
	awsapi.WriteError(w, r, h.logger, awsapi.RuntimeCatalog, err)
}

// validate checks the request against the sagemaker-runtime model's
// constraints, with SageMaker's wording.
func validate(endpoint string, req *router.Request) error {
	var problems []string
	add := func(value, member, constraint string) {
		if len(value) > 256 {
			value = value[:256] + "..."
		}
		problems = append(problems, "Value '"+value+"' at '"+member+"' failed to satisfy constraint: "+constraint)
	}
	const namePattern = "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9])*"
	if len(endpoint) > 63 {
		add(endpoint, "endpointName", "Member must have length less than or equal to 63")
	} else if !isName(endpoint) {
		add(endpoint, "endpointName", namePattern)
	}
	for _, f := range []struct{ value, member string }{
		{req.ContentType, "contentType"}, {req.Accept, "accept"}, {req.CustomAttributes, "customAttributes"},
	} {
		if len(f.value) > 1024 {
			add(f.value, f.member, "Member must have length less than or equal to 1024")
		} else if !isASCII(f.value) {
			add(f.value, f.member, `Member must satisfy regular expression pattern: \p{ASCII}*`)
		}
	}
	if v := req.TargetVariant; v != "" {
		if len(v) > 63 {
			add(v, "targetVariant", "Member must have length less than or equal to 63")
		} else if !isName(v) {
			add(v, "targetVariant", namePattern)
		}
	}
	if id := req.InferenceID; id != "" {
		if len(id) > 64 {
			add(id, "inferenceId", "Member must have length less than or equal to 64")
		} else if !isPrintable(id) {
			add(id, "inferenceId", `Member must satisfy regular expression pattern: \A\S[\p{Print}]*\z`)
		}
	}
	if len(problems) == 0 {
		return nil
	}
	noun := "error"
	if len(problems) > 1 {
		noun = "errors"
	}
	return fault.New(fault.Invalid, "%d validation %s detected: %s", len(problems), noun, strings.Join(problems, "; "))
}

// isName matches ^[a-zA-Z0-9](-*[a-zA-Z0-9])*$.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (c != '-' || i == 0) {
			return false
		}
	}
	return s[len(s)-1] != '-'
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// isPrintable matches \A\S[\p{Print}]*\z for the ASCII headers carry.
func isPrintable(s string) bool {
	if s == "" || s[0] == ' ' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}
