package runtime

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/berth-io/berth/internal/awsapi"
	"github.com/berth-io/berth/internal/h1"
	"github.com/berth-io/berth/internal/router"
)

// The event-loop path (see internal/h1's loops): LoopStart is FastInvoke's
// routing half, LoopFinish its answering half, for an exchange whose I/O
// the loop does. Only plain invocations take it — those router.Begin
// accepts, with valid headers; everything else, and every exchange that
// ends in an error, is answered by FastInvoke or fastFail on a goroutine,
// so the client sees the same responses either way.

// beginner is the part of *router.Router the loop path needs; an Invoker
// without it keeps every request on FastInvoke.
type beginner interface {
	Begin(endpoint string, req *router.Request) (*router.Attempt, error)
	Abandoned() bool
}

type loopState struct {
	attempt *router.Attempt
	id      string
}

var loopStates = sync.Pool{New: func() any { return new(loopState) }}

// LoopStart routes fr for an event loop, filling in x; false leaves the
// request to FastInvoke.
func (h *Handler) LoopStart(fr *h1.FastRequest, x *h1.Exchange) bool {
	name, _ := fastEndpoint(fr.Path)
	req := router.Request{Body: fr.Body, ContentLength: int64(len(fr.Body)), BodyBorrowed: true,
		MaxBodyBytes: h.opts.MaxPayloadBytes, Received: time.Now()}
	var ct, accept, ca, tv, inf []byte
	for _, f := range fr.Header {
		switch {
		case ct == nil && equalFold(f.Name, hdrContentType):
			ct = f.Value
		case accept == nil && equalFold(f.Name, "Accept"):
			accept = f.Value
		case ca == nil && equalFold(f.Name, hdrCustomAttributes):
			ca = f.Value
		case tv == nil && equalFold(f.Name, hdrTargetVariant):
			tv = f.Value
		case inf == nil && equalFold(f.Name, hdrInferenceID):
			inf = f.Value
		}
	}
	req.ContentType, req.Accept, req.CustomAttributes = string(ct), string(accept), string(ca)
	req.TargetVariant, req.InferenceID = string(tv), string(inf)
	endpoint := string(name)
	if validate(endpoint, &req) != nil {
		return false
	}
	b, ok := h.router.(beginner)
	if !ok {
		return false
	}
	a, err := b.Begin(endpoint, &req)
	if err != nil {
		return false
	}
	x.Addr, x.Path, x.Host, x.Deadline = a.Dial(), a.Path(), a.Label(), a.Deadline()
	// The same header lines the router sends upstream.
	if len(ct) > 0 {
		x.Header = h1.AppendHeader(x.Header, "Content-Type", ct)
	}
	if len(accept) > 0 {
		x.Header = h1.AppendHeader(x.Header, "Accept", accept)
	}
	if len(ca) > 0 {
		x.Header = h1.AppendHeader(x.Header, "X-Amzn-Sagemaker-Custom-Attributes", ca)
	}
	if len(inf) > 0 {
		x.Header = h1.AppendHeader(x.Header, "X-Amzn-Sagemaker-Inference-Id", inf)
	}
	st := loopStates.Get().(*loopState)
	st.attempt, st.id = a, awsapi.NewRequestID()
	x.State = st
	return true
}

// LoopFinish records x's outcome and says how the client is answered (see
// h1.FastOptions.LoopFinish).
func (h *Handler) LoopFinish(x *h1.Exchange) error {
	st := x.State.(*loopState)
	a, id := st.attempt, st.id
	*st = loopState{}
	loopStates.Put(st)
	x.State = nil
	switch {
	case x.Err == nil && x.Status >= 200 && x.Status <= 299:
		a.Finish(x.Status, x.Sent, x.Done)
		ct := x.ResponseHeader(hdrContentType)
		if len(ct) == 0 {
			ct = []byte("application/octet-stream")
		}
		x.RespHeader = h1.AppendHeader(x.RespHeader, "X-Amzn-Requestid", id)
		x.RespHeader = h1.AppendHeader(x.RespHeader, hdrContentType, ct)
		x.RespHeader = h1.AppendHeader(x.RespHeader, hdrInvokedVariant, a.Variant())
		if ca := x.ResponseHeader(hdrCustomAttributes); len(ca) > 0 {
			x.RespHeader = h1.AppendHeader(x.RespHeader, hdrCustomAttributes, ca)
		}
		return nil
	case x.Err == nil:
		a.Finish(x.Status, x.Sent, x.Done)
		return router.ModelErrorFor(a.Variant(), x.Status, x.Body)
	case errors.Is(x.Err, h1.ErrLoopAbandoned) || h.router.(beginner).Abandoned():
		a.Finish(-1, time.Time{}, x.Done)
		return router.ErrAbandoned()
	case errors.Is(x.Err, h1.ErrLoopTimeout):
		a.Finish(0, time.Time{}, x.Done)
		return router.TimeoutError(a.Variant())
	case x.Retryable:
		a.Release()
		return h1.ErrLoopRetry
	default:
		a.Finish(0, time.Time{}, x.Done)
		return router.BrokenAnswerError(a.Variant(), x.Err)
	}
}

// LoopFail answers a request with err on a goroutine, as FastInvoke
// would have.
func (h *Handler) LoopFail(ctx context.Context, fr *h1.FastRequest, w *h1.FastResponseWriter, err error) {
	h.fastFail(ctx, fr, w, awsapi.NewRequestID(), err)
}
