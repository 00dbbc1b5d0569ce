// Package modelserver is berth's framework-neutral built-in model server.
// It speaks the SageMaker inference container contract — GET /ping,
// POST /invocations, GET /execution-parameters — and the multi-model
// endpoint API (POST/GET /models, GET/DELETE /models/{name},
// POST /models/{name}/invoke). A Framework (XGBoost today) loads models
// from a directory; everything HTTP lives here, so another framework is one
// package beside internal/modelserver/xgboost.
//
// The server binds 127.0.0.1:$SAGEMAKER_BIND_TO_PORT (default 8080) and
// loads the model in $SM_MODEL_DIR (default /opt/ml/model) before it
// listens. Inside a Docker container it must listen on all interfaces,
// because the platform connects from outside the container: set
// SAGEMAKER_BIND_ALL=true there (a berth Docker image must set it).
package modelserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Framework loads models of one kind from a local directory.
type Framework interface {
	// Name is the framework's name, e.g. "xgboost".
	Name() string
	// Load reads the model in dir. The returned Model must be safe for
	// concurrent use.
	Load(ctx context.Context, dir string) (Model, error)
}

// Model is a loaded model.
type Model interface {
	// Predict answers one invocation. Errors carrying an HTTP status (see
	// Error) are returned to the client with that status; others are 500.
	Predict(ctx context.Context, req *Request) (*Response, error)
}

// Sizer is implemented by models that know their memory footprint; the
// multi-model memory budget uses it.
type Sizer interface {
	MemoryBytes() int64
}

// Request is one invocation.
type Request struct {
	// ContentType is the request Content-Type header, as sent.
	ContentType string
	// Accept is the request Accept header, as sent.
	Accept string
	// Body is the request payload.
	Body []byte
}

// Response is a model's answer.
type Response struct {
	ContentType string
	Body        []byte
}

// Error is an error with an HTTP status and a message that is safe to show
// the client. Err, if set, is the cause, kept for logs and errors.Is.
type Error struct {
	Status  int
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Err.Error() != e.Message {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given status; the message is formatted
// with fmt.Errorf, so %w wraps a cause.
func Errorf(status int, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Status: status, Message: err.Error(), Err: errors.Unwrap(err)}
}

// StatusOf returns the HTTP status carried by err (500 if none).
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) && e.Status >= 400 && e.Status <= 599 {
		return e.Status
	}
	return http.StatusInternalServerError
}
