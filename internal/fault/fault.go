// Package fault defines the kinds of domain error that berth's services
// return. Domain packages say what went wrong (invalid input, not found, in
// use, over a limit); only internal/awsapi decides which AWS error code and
// HTTP status each kind becomes for each protocol.
package fault

import (
	"errors"
	"fmt"
)

// Kind classifies a domain error.
type Kind int

// The kinds of domain error.
const (
	// Internal is any error that carries no kind: a bug or an I/O failure.
	Internal Kind = iota
	// Invalid: the request is malformed or names something impossible.
	Invalid
	// NotFound: the named resource does not exist.
	NotFound
	// Exists: a resource of that name already exists.
	Exists
	// InUse: the resource is busy (for example an endpoint being updated).
	InUse
	// LimitExceeded: the request would pass a configured limit.
	LimitExceeded
	// Unavailable: the resource exists but cannot serve right now.
	Unavailable
	// NotReady: the resource is starting and will serve soon.
	NotReady
	// Throttled: too many requests at once.
	Throttled
	// Timeout: the work did not finish in the time allowed.
	Timeout
)

var kindNames = [...]string{"internal", "invalid", "not found", "exists", "in use", "limit exceeded", "unavailable", "not ready", "throttled", "timeout"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is a domain error whose message is safe to show to the client.
type Error struct {
	Kind Kind
	// Msg is shown to the client as the error message.
	Msg string
	// Err is the internal cause, logged but not shown.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of the given kind with a formatted client message.
func New(kind Kind, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of the given kind with a client message and an
// internal cause.
func Wrap(kind Kind, cause error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...), Err: cause}
}

// KindOf returns the kind of the first *Error in err's chain, or Internal.
func KindOf(err error) Kind {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return Internal
}

// Message returns the client-safe message of err: the Msg of its *Error,
// or a generic text for internal errors, whose details stay in the log.
func Message(err error) string {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Msg
	}
	return "internal error"
}
