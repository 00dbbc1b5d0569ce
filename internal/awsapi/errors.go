package awsapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/berth-io/berth/internal/fault"
)

// Error is an AWS-shaped error response: an HTTP status, an error code
// (sent as X-Amzn-ErrorType and "__type") and a message. Extra members are
// merged into the JSON body (for example OriginalStatusCode on ModelError).
type Error struct {
	Status  int
	Code    string
	Message string
	Extra   map[string]any
	// Cause is logged, never sent.
	Cause error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func (e *Error) Unwrap() error { return e.Cause }

// ErrorCode is one row of an error catalog: what a domain error kind
// becomes on the wire.
type ErrorCode struct {
	Code   string
	Status int
}

// Catalog maps domain error kinds to the codes of one protocol. Kinds not
// present become the catalog's Internal entry.
type Catalog map[fault.Kind]ErrorCode

// SageMakerCatalog is the control plane's table. SageMaker answers
// ValidationException for missing and duplicate models, configs and
// endpoints (the boto3 waiters depend on it), so NotFound and Exists map
// there too.
var SageMakerCatalog = Catalog{
	fault.Internal:      {"InternalFailure", http.StatusInternalServerError},
	fault.Invalid:       {"ValidationException", http.StatusBadRequest},
	fault.NotFound:      {"ValidationException", http.StatusBadRequest},
	fault.Exists:        {"ValidationException", http.StatusBadRequest},
	fault.InUse:         {"ResourceInUse", http.StatusBadRequest},
	fault.LimitExceeded: {"ResourceLimitExceeded", http.StatusBadRequest},
	fault.Unavailable:   {"ServiceUnavailable", http.StatusServiceUnavailable},
	fault.Throttled:     {"ThrottlingException", http.StatusBadRequest},
}

// RuntimeCatalog is the SageMaker Runtime table.
var RuntimeCatalog = Catalog{
	fault.Internal:      {"InternalFailure", http.StatusInternalServerError},
	fault.Invalid:       {"ValidationError", http.StatusBadRequest},
	fault.NotFound:      {"ValidationError", http.StatusBadRequest},
	fault.Exists:        {"ValidationError", http.StatusBadRequest},
	fault.InUse:         {"ValidationError", http.StatusBadRequest},
	fault.LimitExceeded: {"ValidationError", http.StatusBadRequest},
	fault.Unavailable:   {"ServiceUnavailable", http.StatusServiceUnavailable},
	fault.NotReady:      {"ModelNotReadyException", http.StatusTooManyRequests},
	fault.Throttled:     {"ThrottlingException", http.StatusTooManyRequests},
	fault.Timeout:       {"ModelError", http.StatusFailedDependency},
}

// Translate turns any error into an *Error using the catalog. An *Error
// already in the chain is returned as is.
func (c Catalog) Translate(err error) *Error {
	if ae, ok := err.(*Error); ok {
		return ae
	}
	kind := fault.KindOf(err)
	code, ok := c[kind]
	if !ok {
		code = c[fault.Internal]
		kind = fault.Internal
	}
	msg := fault.Message(err)
	return &Error{Status: code.Status, Code: code.Code, Message: msg, Cause: err}
}

// WriteError writes err as an AWS JSON error response. Internal causes go
// to the log with the request id, never to the client.
func WriteError(w http.ResponseWriter, r *http.Request, logger *slog.Logger, c Catalog, err error) {
	ae := c.Translate(err)
	if ae.Status >= 500 {
		logger.Error("request failed", "request_id", RequestID(r.Context()), "path", r.URL.Path, "code", ae.Code, "err", err)
	} else {
		logger.Debug("request refused", "request_id", RequestID(r.Context()), "path", r.URL.Path, "code", ae.Code, "err", err)
	}
	body := map[string]any{"__type": ae.Code, "message": ae.Message}
	for k, v := range ae.Extra {
		body[k] = v
	}
	data, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Set("X-Amzn-ErrorType", ae.Code)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(ae.Status)
	w.Write(data)
}
