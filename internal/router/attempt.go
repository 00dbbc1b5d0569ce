package router

import (
	"errors"
	"strings"
	"time"
)

// An Attempt is an invocation whose instance the router has chosen but
// whose I/O the caller does itself: an event loop that cannot block in
// Open. Begin makes the routing decision and counts the request on the
// instance; exactly one of Finish or Release ends it.
type Attempt struct {
	r     *Router
	v     *variant
	st    *instState
	addr  *instAddr
	start time.Time
}

// ErrNotPlain is Begin's answer for a request it leaves to Open: one that
// is captured or shadowed, or whose endpoint, variant or instances make
// the answer an error (Open words the error).
var ErrNotPlain = errors.New("router: not a plain invocation")

// Begin chooses an instance for req as Open would, for a caller that
// sends req.Body itself. It returns ErrNotPlain for any request that needs
// more than one exchange with one instance (data capture, shadows) and for
// any that would fail before reaching an instance, so that the caller can
// hand it to Open.
func (r *Router) Begin(endpoint string, req *Request) (*Attempt, error) {
	t := r.lookup(endpoint)
	if t == nil || len(t.shadows) > 0 || t.ep.Capture != nil || r.abandon.Load() {
		return nil, ErrNotPlain
	}
	v, err := t.pickVariant(req.TargetVariant)
	if err != nil {
		return nil, ErrNotPlain
	}
	st := v.acquire(nil)
	if st == nil {
		return nil, ErrNotPlain
	}
	start := req.Received
	if start.IsZero() {
		start = r.opts.Now()
	}
	return &Attempt{r: r, v: v, st: st, addr: st.address(), start: start}, nil
}

// Variant is the name of the chosen production variant.
func (a *Attempt) Variant() string { return a.v.name }

// Dial is the instance's host:port; Path its /invocations request-target;
// Label the instance as metrics and the Host header name it.
func (a *Attempt) Dial() string  { return a.addr.dial }
func (a *Attempt) Path() string  { return a.addr.path }
func (a *Attempt) Label() string { return a.addr.label }

// Deadline is when the invocation times out.
func (a *Attempt) Deadline() time.Time { return a.start.Add(a.r.opts.Timeout) }

// Finish records the outcome: the instance's HTTP status (0 for a timeout
// or broken answer), when the request was sent and when the answer was
// complete.
func (a *Attempt) Finish(status int, sent, done time.Time) {
	a.st.inflight.Add(-1)
	now := a.r.opts.Now()
	model := done.Sub(sent)
	if sent.IsZero() || status <= 0 {
		model = 0 // as Open records a failed attempt
	}
	a.v.observe(a.addr.label, status, model, now.Sub(a.start)-model)
}

// Release ends an attempt that is handed to Open instead (nothing
// recorded).
func (a *Attempt) Release() { a.st.inflight.Add(-1) }

// Abandoned reports whether Abandon was called.
func (r *Router) Abandoned() bool { return r.abandon.Load() }

// TimeoutError is the error of an invocation whose instance did not answer
// in time, as Open reports it.
func TimeoutError(variant string) error { return timeoutError(variant) }

// ErrAbandoned is the error of an invocation that Abandon cut short.
func ErrAbandoned() error { return errAbandoned }

// ModelErrorFor is the error of an instance's non-2xx answer, with the
// start of its body, as Open reports it.
func ModelErrorFor(variant string, status int, body []byte) *ModelError {
	if len(body) > maxErrorBody {
		body = body[:maxErrorBody]
	}
	return &ModelError{Variant: variant, OriginalStatus: status, OriginalBody: strings.TrimSpace(string(body))}
}

// BrokenAnswerError is the error of an instance that sent no valid
// answer, as Open reports it.
func BrokenAnswerError(variant string, err error) *ModelError {
	return &ModelError{Variant: variant, OriginalBody: "the model server did not send a valid response: " + trimErr(err)}
}
