package router

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-io/berth/internal/fault"
	"github.com/berth-io/berth/internal/h1"
)

// Request is one invocation. Besides the body and SageMaker's headers it
// carries where the request goes on the instance and under which limits,
// so that every kind of inference shares one picker and one relay (see
// the package doc).
type Request struct {
	// Body is the request body when BodyReader is nil.
	Body []byte
	// BodyReader, when set, is streamed to the instance instead of Body;
	// ContentLength is its length, or -1 when unknown.
	BodyReader    io.Reader
	ContentLength int64
	// MaxBodyBytes, when positive, bounds the body; a longer one fails
	// with an Invalid fault without being buffered.
	MaxBodyBytes int64
	// BodyBorrowed says Body is only valid until the Stream is closed
	// (it is a connection's read buffer): Open copies it when a shadow
	// variant will need it later.
	BodyBorrowed bool

	// ContentType, Accept, CustomAttributes and InferenceID are forwarded
	// to the model as SageMaker forwards them.
	ContentType      string
	Accept           string
	CustomAttributes string
	InferenceID      string
	// Header lists further headers forwarded to the model as given (for
	// example X-Amzn-SageMaker-Target-Model). Framing headers (Host,
	// Content-Length, Transfer-Encoding, Connection...) are skipped.
	Header []Field
	// TargetVariant, when set, restricts the choice to the variant of
	// that name.
	TargetVariant string
	// Instance, when set, sends the request to that instance (of
	// whichever variant routes to it) without retrying elsewhere: the
	// later hops of a serial pipeline use the instance of the first
	// (Stream.Instance).
	Instance Instance

	// Path is the request-target on the instance: an absolute path, with
	// a query if any, already escaped. Empty means "/invocations".
	Path string
	// Container names the container of a multi-container instance (its
	// ContainerHostname, see Containers); empty means the primary.
	Container string
	// Timeout, when positive, replaces Options.Timeout for this request.
	Timeout time.Duration
	// MaxResponseBytes, when positive, replaces Options.MaxResponseBytes
	// for this request.
	MaxResponseBytes int64
	// MaxConcurrency, when positive, replaces the variant's
	// MaxConcurrency for this request (a transform job's
	// MaxConcurrentTransforms).
	MaxConcurrency int

	// RequestID identifies the request in data capture (EventId).
	RequestID string
	// Received is when the request arrived, for OverheadLatency; the
	// start of Open by default.
	Received time.Time
	// Stream asks for a response stream: the response headers must come
	// within the timeout, the whole response within
	// Options.StreamTimeout, and no size limit applies.
	Stream bool
}

// Field is a header field to forward.
type Field struct{ Name, Value string }

// timeout returns the request's time limit.
func (r *Router) timeout(req *Request) time.Duration {
	if req.Timeout > 0 {
		return req.Timeout
	}
	return r.opts.Timeout
}

// maxResponse returns the request's bound on a buffered answer.
func (r *Router) maxResponse(req *Request) int64 {
	if req.MaxResponseBytes > 0 {
		return req.MaxResponseBytes
	}
	return r.opts.MaxResponseBytes
}

// Response is a model's successful, buffered answer.
type Response struct {
	Body             []byte
	ContentType      string
	CustomAttributes string
	Variant          string
}

// ModelError reports that the container answered with a non-2xx status,
// did not answer in time, or broke its response. OriginalStatus is 0 when
// the container gave no status.
type ModelError struct {
	Variant        string
	OriginalStatus int
	OriginalBody   string
	// Timeout is set when the container did not answer in time.
	Timeout bool
}

func (e *ModelError) Error() string {
	class := "server"
	if e.OriginalStatus >= 400 && e.OriginalStatus < 500 {
		class = "client"
	}
	return fmt.Sprintf("Received %s error (%d) from primary with message %q. See the instance logs of variant %s in the berth data directory for more information.",
		class, e.OriginalStatus, e.OriginalBody, e.Variant)
}

// maxReplayBody is the largest streamed request body read into memory
// before it is sent, so that it can be sent again after a broken
// connection (as nginx buffers request bodies).
const maxReplayBody = 64 << 10

// maxErrorBody bounds the OriginalMessage kept from a model's error answer
// (SageMaker's Message shape allows 2048 characters).
const maxErrorBody = 2048

// errInvocationTimeout is the cancel cause of an invocation that ran out
// of time.
var errInvocationTimeout = errors.New("invocation timed out")

// errBodyTooLarge stops a request body at its limit.
var errBodyTooLarge = errors.New("request body over the limit")

// errSlotTimeout ends a capped request's wait for a slot at its deadline.
var errSlotTimeout = errors.New("no free slot on the instance before the deadline")

func timeoutError(variant string) error {
	return &ModelError{Variant: variant, Timeout: true,
		OriginalBody: "Your invocation timed out while waiting for a response from container primary. Review the latency metrics for each container, resolve the issue, and try again."}
}

// restoring reports whether an endpoint in this status that the router
// has no table for is one that served before a restart and is being
// brought back: the caller should retry (503), as SDKs do, rather than be
// told the endpoint cannot be invoked (400). A running endpoint always has
// a table, whatever its status, so only a restart leaves such a gap.
func restoring(status string) bool {
	switch status {
	case "InService", "SystemUpdating", "Updating":
		return true
	}
	return false
}

// Open sends req to one instance of the endpoint and returns the
// instance's successful answer with its body unread. The caller reads the
// body from the Stream and must Close it. A non-2xx answer is returned as
// a *ModelError.
func (r *Router) Open(ctx context.Context, endpoint string, req *Request) (*Stream, error) {
	start := req.Received
	if start.IsZero() {
		start = r.opts.Now()
	}
	t := r.lookup(endpoint)
	if t == nil {
		if r.opts.EndpointStatus != nil {
			if status, ok := r.opts.EndpointStatus(endpoint); ok {
				if restoring(status) {
					return nil, fault.New(fault.Unavailable, "Endpoint %s of account %s is starting its instances after a restart of the server; retry shortly.", endpoint, r.opts.AccountID)
				}
				return nil, fault.New(fault.Invalid, "Endpoint %s of account %s is %s, not InService; invoke it once DescribeEndpoint reports InService.", endpoint, r.opts.AccountID, status)
			}
		}
		return nil, fault.New(fault.NotFound, "Endpoint %s of account %s not found.", endpoint, r.opts.AccountID)
	}
	if req.Path != "" && !validPath(req.Path) {
		return nil, fault.New(fault.Invalid, "The request path %q is not an absolute path of visible ASCII characters.", req.Path)
	}
	var v *variant
	var pin *instState
	var err error
	if req.Instance != nil {
		v, pin, err = t.pinned(req.Instance)
	} else {
		v, err = t.pickVariant(req.TargetVariant)
	}
	if err != nil {
		return nil, err
	}
	capture := t.ep.Capture != nil && t.ep.Capture.Sample()
	var kept *bytes.Buffer
	small := req.ContentLength >= 0 && req.ContentLength <= maxReplayBody
	if req.BodyReader != nil && (capture || len(t.shadows) > 0 || small) {
		// Capture and shadows need a copy of the body, and a small body
		// held in memory can be sent again if the instance dies before it
		// answers: read it once, within the limit, and send the copy.
		if kept, err = readBody(req); err != nil {
			return nil, err
		}
		c := *req
		c.Body, c.BodyReader, c.ContentLength = kept.Bytes(), nil, int64(kept.Len())
		req = &c
	}
	if kept == nil && req.BodyBorrowed && len(t.shadows) > 0 && len(req.Body) > 0 {
		kept = getBuffer()
		kept.Write(req.Body)
		c := *req
		c.Body = kept.Bytes()
		req = &c
	}
	s, err := r.open(ctx, t, v, pin, req, start)
	if err != nil {
		putBuffer(kept)
		return nil, err
	}
	s.capture = capture
	s.primary = true
	s.kept = kept
	if capture || len(t.shadows) > 0 {
		if kept == nil { // a buffered body: keep it as is
			s.keptBody = req.Body
		}
		s.req = *req
		s.req.BodyReader = nil
	}
	return s, nil
}

// readBody reads a streamed request body into a pooled buffer, refusing
// one over the limit without reading past it.
func readBody(req *Request) (*bytes.Buffer, error) {
	buf := getBuffer()
	br := bodyReader{r: req.BodyReader, limit: req.MaxBodyBytes}
	if _, err := buf.ReadFrom(&br); err != nil {
		putBuffer(buf)
		return nil, br.fault(err)
	}
	return buf, nil
}

// Invoke sends req to the endpoint and returns the model's buffered answer.
func (r *Router) Invoke(ctx context.Context, endpoint string, req Request) (*Response, error) {
	s, err := r.Open(ctx, endpoint, &req)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var body []byte
	if s.ContentLength >= 0 && s.ContentLength <= s.maxResp {
		body = make([]byte, s.ContentLength)
		if _, err := io.ReadFull(s, body); err != nil {
			return nil, err
		}
		// Reach EOF, so the model latency ends and the connection is reused.
		var one [1]byte
		if n, err := s.Read(one[:]); n > 0 || err != io.EOF {
			if err == nil || err == io.EOF {
				err = &ModelError{Variant: s.Variant, OriginalBody: "the model sent more bytes than its Content-Length"}
			}
			return nil, err
		}
	} else {
		buf := getBuffer()
		defer putBuffer(buf)
		if _, err := buf.ReadFrom(s); err != nil {
			return nil, err
		}
		body = bytes.Clone(buf.Bytes())
	}
	return &Response{Body: body, ContentType: s.ContentType, CustomAttributes: s.CustomAttributes, Variant: s.Variant}, nil
}

// open sends req to an instance of v (to pin when set), retrying once on
// another instance when the first could not be reached. The picker
// chooses and counts the instance, a capped request waits for a slot on
// it, and the relay sends.
func (r *Router) open(parent context.Context, t *table, v *variant, pin *instState, req *Request, start time.Time) (*Stream, error) {
	var st *instState
	if pin != nil {
		if pin.usable() && pin.count() {
			st = pin
		}
	} else {
		st = v.acquire(nil)
	}
	if st == nil {
		v.observe("", 0, 0, r.opts.Now().Sub(start))
		return nil, fault.New(fault.Unavailable, "No healthy instance of variant %s of endpoint %s can take the request; retry later.", v.name, t.ep.Name)
	}
	limit := v.maxConc
	if req.MaxConcurrency > 0 {
		limit = req.MaxConcurrency
	}
	var streamed *bodyReader
	if req.BodyReader != nil {
		streamed = &bodyReader{r: req.BodyReader, limit: req.MaxBodyBytes}
	}
	inv := r.newInvocation(parent, start, r.timeout(req), streamed != nil && req.ContentLength < 0)
	var addr *instAddr
	slot := false // st's slot is held
	leave := func() {
		if slot {
			st.releaseSlot()
			slot = false
		}
		st.inflight.Add(-1)
	}
	fail := func(status int, err error) (*Stream, error) {
		inv.end()
		leave()
		label := ""
		if addr != nil {
			label = addr.label
		}
		v.observe(label, status, 0, r.opts.Now().Sub(start))
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		if limit > 0 {
			if err := r.takeSlot(parent, st, limit, inv.deadline); err != nil {
				switch {
				case errors.Is(err, errSlotTimeout):
					return fail(0, fault.New(fault.Throttled, "Every slot of the instance of variant %s of endpoint %s (at most %d requests at once) stayed busy for the whole timeout of the request; retry later.", v.name, t.ep.Name, limit))
				case errors.Is(err, errAbandoned):
					return fail(-1, errAbandoned)
				}
				return fail(-1, fmt.Errorf("invocation abandoned: %w", err))
			}
			slot = true
		}
		if addr = st.containerAddress(req.Container); addr == nil {
			return fail(0, fault.New(fault.Invalid, "Variant %s of endpoint %s has no container named %s.", v.name, t.ep.Name, req.Container))
		}
		sent := r.opts.Now()
		resp, err := r.relay(&inv, addr, req, streamed)
		if err == nil {
			if resp.status < 200 || resp.status > 299 {
				msg := readErrorBody(resp.body)
				resp.body.Close()
				inv.end()
				leave()
				now := r.opts.Now()
				v.observe(addr.label, resp.status, now.Sub(sent), sent.Sub(start))
				return nil, &ModelError{Variant: v.name, OriginalStatus: resp.status, OriginalBody: msg}
			}
			if req.Stream {
				// Headers came in time; the stream gets its own bound.
				inv.extend(start.Add(r.opts.StreamTimeout), resp.body)
			}
			s := streamPool.Get().(*Stream)
			*s = Stream{
				Variant:          v.name,
				ContentType:      resp.contentType,
				CustomAttributes: resp.customAttributes,
				ContentLength:    resp.contentLength,
				r:                r, t: t, v: v, st: st, slot: slot, body: resp.body, status: resp.status, inv: inv,
				start: start, sent: sent, stream: req.Stream, label: addr.label, maxResp: r.maxResponse(req),
			}
			return s, nil
		}
		switch {
		case r.timedOut(&inv):
			return fail(0, timeoutError(v.name))
		case r.abandoned(&inv):
			return fail(-1, r.abandonError(&inv))
		case streamed != nil && streamed.failure() != nil:
			return fail(-1, streamed.fault(streamed.failure()))
		case fault.KindOf(err) == fault.Invalid:
			return fail(0, err)
		}
		// Retry once, elsewhere, when the request cannot have been
		// answered: the dial failed, or the connection broke before any
		// response byte came (the instance died or had closed a kept-alive
		// connection). A body in memory is sent afresh; a streamed body
		// is retried only after a failed dial, when none of it can have
		// been consumed. Inference is idempotent, so a model that
		// died while working on the first attempt costs nothing but time.
		// A pinned request has nowhere else to go.
		retry := pin == nil && (isDialError(err) || streamed == nil && isConnReset(err))
		if attempt == 0 && retry {
			if next := v.acquire(st); next != nil {
				leave()
				st = next
				continue
			}
		}
		if isDialError(err) {
			return fail(0, fault.Wrap(fault.Unavailable, err, "Could not reach an instance of variant %s of endpoint %s; retry later.", v.name, t.ep.Name))
		}
		return fail(0, &ModelError{Variant: v.name, OriginalBody: "the model server did not send a valid response: " + trimErr(err)})
	}
}

// invocation is one invocation's time limit and what ends it early. The
// h1 client enforces the limit as its connection's deadline, so the common
// case needs no context, timer or cancellation registration of its own
// (each costs allocations and a lock on the parent context per request);
// only a body of unknown length, which goes through net/http's Transport,
// gets a context that a timer cancels.
type invocation struct {
	parent   context.Context // the caller's: its cancellation abandons the invocation
	deadline time.Time

	// Transport only (nil otherwise).
	ctx         context.Context
	cancel      context.CancelCauseFunc
	timer       *time.Timer
	stopAbandon func() bool // unregisters the cancellation by Abandon
}

func (r *Router) newInvocation(parent context.Context, start time.Time, timeout time.Duration, transport bool) invocation {
	inv := invocation{parent: parent, deadline: start.Add(timeout)}
	if transport {
		ctx, cancel := context.WithCancelCause(parent)
		inv.ctx, inv.cancel = ctx, cancel
		inv.timer = time.AfterFunc(inv.deadline.Sub(r.opts.Now()), func() { cancel(errInvocationTimeout) })
		inv.stopAbandon = context.AfterFunc(r.abandonCtx, func() { cancel(errAbandoned) })
	}
	return inv
}

// extend moves the deadline for the rest of the answer's body.
func (inv *invocation) extend(deadline time.Time, body io.ReadCloser) {
	inv.deadline = deadline
	if inv.timer != nil {
		inv.timer.Reset(time.Until(deadline))
	}
	if hr, ok := body.(*h1.Response); ok {
		hr.SetDeadline(deadline)
	}
}

// end releases the timer and context, if any.
func (inv *invocation) end() {
	if inv.timer != nil {
		inv.timer.Stop()
		inv.stopAbandon()
		inv.cancel(nil)
	}
}

// timedOut reports whether a failure of inv is its time limit's doing.
func (r *Router) timedOut(inv *invocation) bool {
	if inv.ctx != nil {
		return errors.Is(context.Cause(inv.ctx), errInvocationTimeout)
	}
	return !r.opts.Now().Before(inv.deadline)
}

// abandoned reports whether inv failed because its caller gave up or the
// router abandoned every invocation (see Abandon).
func (r *Router) abandoned(inv *invocation) bool {
	return inv.parent.Err() != nil || r.abandon.Load()
}

func (r *Router) abandonError(inv *invocation) error {
	if err := inv.parent.Err(); err != nil {
		return fmt.Errorf("invocation abandoned: %w", err)
	}
	return errAbandoned
}

// bodyReader relays a client's body, counting and bounding it. Its Close
// does nothing: the client's body belongs to the caller, and a request
// that failed to connect is retried with the same reader.
type bodyReader struct {
	r     io.Reader
	n     int64 // only used by the reading goroutine
	limit int64

	mu  sync.Mutex
	err error // the first error other than io.EOF
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if err := b.failure(); err != nil {
		return 0, err
	}
	if b.limit > 0 && int64(len(p)) > b.limit-b.n+1 {
		p = p[:b.limit-b.n+1]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.limit > 0 && b.n > b.limit {
		err, n = errBodyTooLarge, 0
	}
	if err != nil && err != io.EOF {
		b.mu.Lock()
		b.err = err
		b.mu.Unlock()
	}
	return n, err
}

// failure returns the first read error other than io.EOF.
func (b *bodyReader) failure() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

func (b *bodyReader) Close() error { return nil }

// fault turns a body read failure into what the client is told.
func (b *bodyReader) fault(err error) error {
	if errors.Is(err, errBodyTooLarge) {
		return TooLarge(b.limit)
	}
	return fault.Wrap(fault.Invalid, err, "Could not read the request body.")
}

// TooLarge is the error of a request body over limit bytes.
func TooLarge(limit int64) error {
	return fault.New(fault.Invalid, "Request body is larger than the %d bytes an InvokeEndpoint request may carry; use asynchronous inference or batch transform for larger payloads.", limit)
}

func isDialError(err error) bool {
	if h1.IsDialError(err) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// isConnReset reports a kept-alive connection that the instance had
// closed (the instance restarted or died between requests).
func isConnReset(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "server closed idle connection") || strings.Contains(msg, "transport connection broken")
}

func trimErr(err error) string {
	s := err.Error()
	if len(s) > 512 {
		s = s[:512]
	}
	return s
}

// readErrorBody returns the start of a model's error answer and drains a
// little more of it, so the connection can be reused.
func readErrorBody(body io.Reader) string {
	buf := make([]byte, maxErrorBody)
	n, _ := io.ReadFull(body, buf)
	io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	return strings.TrimSpace(string(buf[:n]))
}

func (v *variant) observe(instance string, status int, model, overhead time.Duration) {
	if v.metrics != nil {
		v.metrics.Observe(instance, status, model, overhead)
	}
}

// Stream is an instance's successful answer being read. It is not safe
// for concurrent use, and must be closed; after Close it must not be used.
type Stream struct {
	// Variant is the production variant that answered.
	Variant string
	// ContentType and CustomAttributes are the model's response headers.
	ContentType      string
	CustomAttributes string
	// ContentLength is the body's length, or -1 when unknown.
	ContentLength int64

	r       *Router
	t       *table
	v       *variant
	st      *instState
	slot    bool          // st's slot is held (a capped request)
	maxResp int64         // the bound on a buffered answer
	body    io.ReadCloser // the answer's body, from either client
	status  int           // the answer's status
	inv     invocation    // to tell a timeout from a disconnect

	label             string // the instance, for metrics
	start, sent, done time.Time
	stream            bool
	n                 int64
	eof               bool
	err               error

	capture  bool
	primary  bool          // a client's request, not a shadow copy
	req      Request       // for capture and shadows
	kept     *bytes.Buffer // pooled copy of a streamed request body
	keptBody []byte        // the caller's buffered body
	respCopy *bytes.Buffer // pooled copy of the response, for capture
}

var streamPool = sync.Pool{New: func() any { return new(Stream) }}

// Instance returns the instance that answered: a later hop of a serial
// pipeline sets it as its Request.Instance.
func (s *Stream) Instance() Instance { return s.st.inst }

// Read reads the model's answer. A failure is a *ModelError (timeout or
// broken response) or the caller's context error.
func (s *Stream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.eof {
		return 0, io.EOF
	}
	n, err := s.body.Read(p)
	s.n += int64(n)
	if !s.stream && s.n > s.maxResp {
		s.err = &ModelError{Variant: s.Variant, OriginalStatus: s.status,
			OriginalBody: fmt.Sprintf("the response is larger than %d bytes", s.maxResp)}
		return 0, s.err
	}
	if s.capture && n > 0 {
		if s.respCopy == nil {
			s.respCopy = getBuffer()
		}
		s.respCopy.Write(p[:n])
	}
	switch {
	case err == io.EOF:
		s.eof = true
		s.done = s.r.opts.Now()
	case err != nil:
		s.done = s.r.opts.Now()
		switch {
		case s.r.timedOut(&s.inv):
			s.err = timeoutError(s.Variant)
		case s.r.abandoned(&s.inv):
			s.err = s.r.abandonError(&s.inv)
		default:
			s.err = &ModelError{Variant: s.Variant, OriginalBody: "the model's response broke off: " + trimErr(err)}
		}
		return n, s.err
	}
	return n, err
}

// Close ends the invocation: it releases the connection, records the
// metrics, and hands a complete invocation to data capture and a shadow.
func (s *Stream) Close() error {
	r := s.r
	if r == nil {
		return nil
	}
	now := r.opts.Now()
	if s.done.IsZero() {
		s.done = now
	}
	s.body.Close()
	s.inv.end()
	if s.slot {
		s.st.releaseSlot()
	}
	s.st.inflight.Add(-1)

	status := s.status
	switch {
	case s.err != nil && isModelError(s.err):
		status = 0
	case s.err != nil || !s.eof:
		status = -1 // the caller gave up reading
	}
	model := s.done.Sub(s.sent)
	s.v.observe(s.label, status, model, now.Sub(s.start)-model)

	ok := s.err == nil && s.eof
	if ok && s.capture {
		s.captureEvent(now)
	}
	shadowed := false
	if ok && s.primary && len(s.t.shadows) > 0 {
		shadowed = r.shadow(s.t, s.req, s.keptBody, s.kept)
	}
	if !shadowed {
		putBuffer(s.kept)
	}
	putBuffer(s.respCopy)
	*s = Stream{}
	streamPool.Put(s)
	return nil
}

// isModelError reports whether err is a *ModelError (apart from Close's
// hot path, where a pointer for errors.As would escape on every call).
func isModelError(err error) bool {
	var me *ModelError
	return errors.As(err, &me)
}

func (s *Stream) captureEvent(now time.Time) {
	body := s.keptBody
	if s.kept != nil {
		body = s.kept.Bytes()
	}
	var resp []byte
	if s.respCopy != nil {
		resp = bytes.Clone(s.respCopy.Bytes())
	}
	s.t.ep.Capture.Capture(CaptureEvent{
		Endpoint:            s.t.ep.Name,
		Variant:             s.Variant,
		InferenceID:         s.req.InferenceID,
		EventID:             s.req.RequestID,
		Time:                now,
		RequestContentType:  s.req.ContentType,
		ResponseContentType: s.ContentType,
		RequestBody:         bytes.Clone(body),
		ResponseBody:        resp,
		CustomAttributes:    s.req.CustomAttributes,
	})
}

// shadow sends a copy of a request to one shadow variant in the
// background. It reports whether it took ownership of kept.
func (r *Router) shadow(t *table, req Request, body []byte, kept *bytes.Buffer) bool {
	if t.shadowW <= 0 && len(t.shadows) > 1 {
		return false
	}
	sv := t.shadows[0]
	if len(t.shadows) > 1 {
		sv = pickWeighted(t.shadows, t.shadowW)
	}
	if sv == nil {
		return false
	}
	select {
	case r.shadowSem <- struct{}{}:
	default:
		if sv.metrics != nil {
			sv.metrics.ShadowDropped()
		}
		return false
	}
	if kept != nil {
		body = kept.Bytes()
	}
	req.Body, req.BodyReader, req.Stream, req.Received, req.Instance = body, nil, false, time.Time{}, nil
	r.shadowWG.Add(1)
	go func() {
		defer r.shadowWG.Done()
		defer func() { <-r.shadowSem }()
		defer putBuffer(kept)
		s, err := r.open(r.closing, t, sv, nil, &req, r.opts.Now())
		if err != nil {
			return
		}
		buf := getCopyBuf()
		io.CopyBuffer(io.Discard, s, *buf)
		putCopyBuf(buf)
		s.Close()
	}()
	return true
}
