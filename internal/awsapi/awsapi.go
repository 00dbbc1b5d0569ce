// Package awsapi is berth's edge: one HTTP handler that speaks four AWS
// protocols on one port. It picks the service from the SigV4 credential
// scope of the Authorization header (falling back to X-Amz-Target and the
// path for unsigned requests), verifies SigV4 signatures when credentials
// are configured (auth.go, over package sigv4), stamps every response with a
// request id, and is the only place where domain errors and signature
// failures become AWS error codes. The protocols themselves live in the
// sub-packages sagemaker, runtime and s3.
package awsapi

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/berth-io/berth/internal/awsapi/sigv4"
)

// Services are the protocol handlers behind the one port. A nil handler
// answers UnknownOperationException.
type Services struct {
	SageMaker http.Handler // awsJson1_1, X-Amz-Target: SageMaker.<Op>
	Runtime   http.Handler // restJson1, /endpoints/{name}/...
	S3        http.Handler // the embedded object store
	// Extra serves paths of berth's own (for example /metrics) for
	// unsigned GET requests. They are never authenticated.
	Extra map[string]http.Handler
	// Verifier, when set, verifies the SigV4 signature of every request
	// but those for Extra; nil accepts every request (any key works).
	Verifier *sigv4.Verifier
	// MaxSignedBodyBytes bounds the body of a JSON request held in
	// memory to check its hash (8 MiB when zero).
	MaxSignedBodyBytes int64
	// SelfAuthenticated reports the S3 requests that carry their
	// authentication in the body rather than a request signature —
	// browser form uploads, whose signed POST policy the S3 handler
	// checks — and so pass the signature check unverified.
	SelfAuthenticated func(*http.Request) bool
}

// protocol is the wire protocol of a picked handler: it decides the shape
// of authentication errors.
type protocol int

const (
	protoNone protocol = iota // berth's own paths: not authenticated
	protoSageMaker
	protoRuntime
	protoS3
)

// Service names as they appear in SigV4 credential scopes.
const (
	scopeSageMaker = "sagemaker"
	scopeS3        = "s3"
)

// NewHandler returns the handler that routes each request to its service.
func NewHandler(s Services, logger *slog.Logger) http.Handler {
	return &router{s: s, logger: logger}
}

type router struct {
	s      Services
	logger *slog.Logger
}

type requestIDKey struct{}

// RequestID returns the id assigned to the request carried by ctx.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithRequestID returns ctx carrying the request id, for a request served
// outside this package's handler (the runtime API's fast path).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// NewRequestID returns a new request id, as the handler assigns one.
func NewRequestID() string { return newRequestID() }

// newRequestID returns a random id in UUID layout. Request ids need to be
// unique, not secret, so the runtime's fast generator serves (a
// crypto/rand read is a system call on every request).
func newRequestID() string {
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(b[8:], rand.Uint64())
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:36], b[10:16])
	return string(out[:])
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := newRequestID()
	w.Header().Set("x-amzn-RequestId", id)
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
	h, proto := rt.pick(r)
	if h == nil {
		WriteError(w, r, rt.logger, SageMakerCatalog, &Error{
			Status:  http.StatusBadRequest,
			Code:    "UnknownOperationException",
			Message: "berth does not know this operation; check the endpoint URL and the X-Amz-Target header",
		})
		return
	}
	if rt.s.Verifier != nil && proto != protoNone {
		var ok bool
		if w, r, ok = rt.authenticate(w, r, proto); !ok {
			return
		}
	}
	h.ServeHTTP(w, r)
}

// pick chooses the service handler for r and its protocol.
func (rt *router) pick(r *http.Request) (http.Handler, protocol) {
	target := r.Header.Get("X-Amz-Target")
	switch scope := credentialScopeService(r); scope {
	case scopeSageMaker:
		// The control plane and the runtime share the "sagemaker" scope;
		// only the control plane sends X-Amz-Target.
		if target != "" {
			return nilIfUnset(rt.s.SageMaker, strings.HasPrefix(target, "SageMaker.")), protoSageMaker
		}
		return rt.s.Runtime, protoRuntime
	case scopeS3:
		return rt.s.S3, protoS3
	case "":
		// Unsigned: decide by target, then by path.
	default:
		return nil, protoNone
	}
	switch {
	case strings.HasPrefix(target, "SageMaker."):
		return rt.s.SageMaker, protoSageMaker
	case target != "":
		return nil, protoNone
	case strings.HasPrefix(r.URL.Path, "/endpoints/"):
		return rt.s.Runtime, protoRuntime
	}
	if r.Method == http.MethodGet {
		if h, ok := rt.s.Extra[r.URL.Path]; ok {
			return h, protoNone
		}
	}
	return rt.s.S3, protoS3
}

// RoutesToRuntime reports, without an *http.Request, whether the handler
// sends a request for a path under /endpoints/ without a query string to
// the runtime API, given its X-Amz-Target and Authorization values (empty
// when absent). It agrees with pick: an unsigned request or one signed for
// "sagemaker", and no X-Amz-Target. The runtime API's fast path uses it to
// take only the requests the handler would have given it.
func RoutesToRuntime(target, authorization []byte) bool {
	if len(target) > 0 {
		return false
	}
	if len(authorization) == 0 {
		return true
	}
	_, rest, ok := bytes.Cut(authorization, []byte("Credential="))
	if !ok {
		return true // not SigV4: unsigned
	}
	cred, _, _ := bytes.Cut(rest, []byte(","))
	cred = bytes.TrimSpace(cred)
	// The last two of at least five "/"-separated parts.
	last := bytes.LastIndexByte(cred, '/')
	if last < 0 || string(cred[last+1:]) != "aws4_request" || bytes.Count(cred, []byte("/")) < 4 {
		return true
	}
	svc := cred[:last]
	svc = svc[bytes.LastIndexByte(svc, '/')+1:]
	return string(svc) == scopeSageMaker
}

func nilIfUnset(h http.Handler, ok bool) http.Handler {
	if !ok || h == nil {
		return nil
	}
	return h
}

// credentialScopeService returns the service of the SigV4 credential
// scope (".../<region>/<service>/aws4_request"), from the Authorization
// header or, for presigned URLs, the X-Amz-Credential query parameter.
func credentialScopeService(r *http.Request) string {
	cred := ""
	if auth := r.Header.Get("Authorization"); auth != "" {
		_, rest, ok := strings.Cut(auth, "Credential=")
		if !ok {
			return ""
		}
		cred, _, _ = strings.Cut(rest, ",")
	} else if q := r.URL.Query().Get("X-Amz-Credential"); q != "" {
		cred = q
	} else {
		return ""
	}
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) < 5 || parts[len(parts)-1] != "aws4_request" {
		return ""
	}
	return parts[len(parts)-2]
}
