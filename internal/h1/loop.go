package h1

import (
	"errors"
	"time"
)

// An Exchange is one request that an event loop forwards itself (see
// FastOptions.LoopStart): LoopStart fills in the upstream side, the loop
// sends the request and reads the whole answer, and LoopFinish turns the
// answer into the client's response headers.
type Exchange struct {
	// Set by LoopStart.
	Addr     string    // upstream "ip:port" (a literal address: the loop does not resolve names)
	Path     string    // request-target
	Host     string    // Host header
	Header   []byte    // further request header lines (AppendHeader)
	Deadline time.Time // when the exchange fails with ErrLoopTimeout
	State    any       // the handler's own

	// Set by the loop for LoopFinish.
	Status    int       // the upstream's status (0 when Err is set)
	Body      []byte    // the upstream's body; valid until LoopFinish returns
	Sent      time.Time // when the request was written (zero if it never was)
	Done      time.Time // when the answer was complete or the exchange failed
	Err       error     // why the exchange failed, or nil
	Retryable bool      // Err came before the upstream can have seen the request
	head      []byte    // the upstream's response head, for ResponseHeader

	// Set by LoopFinish for a successful response: its header lines
	// (AppendHeader), except Date, Content-Length and Connection.
	RespHeader []byte
}

// ResponseHeader returns the value of the upstream response's first field
// called name (ASCII case-insensitive), or nil.
func (x *Exchange) ResponseHeader(name string) []byte { return lookupField(x.head, name) }

// Errors an Exchange can end with.
var (
	// ErrLoopTimeout: the upstream did not answer by Exchange.Deadline.
	ErrLoopTimeout = errors.New("upstream did not answer in time")
	// ErrLoopAbandoned: the listener abandoned exchanges in flight.
	ErrLoopAbandoned = errors.New("exchange abandoned at shutdown")
	// ErrLoopRetry is LoopFinish's answer for "serve this request afresh
	// through Handle" (after a failure that the upstream cannot have
	// acted on).
	ErrLoopRetry = errors.New("serve the request again through Handle")
)

func (x *Exchange) reset() {
	*x = Exchange{Header: x.Header[:0], RespHeader: x.RespHeader[:0]}
}
