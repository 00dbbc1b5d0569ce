package runtime

import (
	"net/http"
	"net/url"

	"github.com/berth-io/berth/internal/awsapi"
	"github.com/berth-io/berth/internal/fault"
	"github.com/berth-io/berth/internal/h1"
	"github.com/berth-io/berth/internal/router"
)

// headerGetter is what decodeInvocation needs of a request's header: the
// first value of a field by its canonical name, "" when absent.
// http.Header satisfies it; fastHeader adapts the fast path's request.
// Both are a single pointer, so passing them costs no allocation.
type headerGetter interface {
	Get(name string) string
}

// fastHeader reads the header of a request the fast path serves.
type fastHeader struct{ *h1.FastRequest }

func (h fastHeader) Get(name string) string {
	// The conversion allocates only for a field that is present.
	return string(h.HeaderValue(name))
}

var _ headerGetter = http.Header(nil)

// Operations an invocation header belongs to.
const (
	opInvoke = 1 << iota // InvokeEndpoint
	opStream             // InvokeEndpointWithResponseStream
	opBoth   = opInvoke | opStream
)

// invocationHeaders are the request headers of the runtime API's
// invocations, as the sagemaker-runtime model names them. A header that
// berth takes is one entry here: decodeInvocation reads it for both the
// fast path and net/http.
var invocationHeaders = [...]struct {
	name string // canonical form
	ops  int
	// set stores a value in the router's request; nil for a header that
	// is refused or ignored.
	set func(req *router.Request, value string)
	// unsupported, when set, refuses a request carrying the header; it
	// names the member and its feature for the message.
	unsupported string
}{
	{name: hdrContentType, ops: opBoth, set: func(r *router.Request, v string) { r.ContentType = v }},
	{name: "Accept", ops: opInvoke, set: func(r *router.Request, v string) { r.Accept = v }},
	{name: hdrStreamAccept, ops: opStream, set: func(r *router.Request, v string) { r.Accept = v }},
	{name: hdrCustomAttributes, ops: opBoth, set: func(r *router.Request, v string) { r.CustomAttributes = v }},
	{name: hdrTargetVariant, ops: opBoth, set: func(r *router.Request, v string) { r.TargetVariant = v }},
	{name: hdrInferenceID, ops: opBoth, set: func(r *router.Request, v string) { r.InferenceID = v }},
	{name: "X-Amzn-Sagemaker-Target-Model", ops: opInvoke, unsupported: "TargetModel (header X-Amzn-SageMaker-Target-Model), for multi-model endpoints,"},
	{name: "X-Amzn-Sagemaker-Target-Container-Hostname", ops: opBoth, unsupported: "TargetContainerHostname (header X-Amzn-SageMaker-Target-Container-Hostname), for multi-container endpoints,"},
	{name: "X-Amzn-Sagemaker-Inference-Component", ops: opBoth, unsupported: "InferenceComponentName (header X-Amzn-SageMaker-Inference-Component), for inference components,"},
	{name: "X-Amzn-Sagemaker-Session-Id", ops: opBoth, unsupported: "SessionId (header X-Amzn-SageMaker-Session-Id), for stateful sessions,"},
	{name: "X-Amzn-Sagemaker-Enable-Explanations", ops: opInvoke, unsupported: "EnableExplanations (header X-Amzn-SageMaker-Enable-Explanations), for endpoints with a ClarifyExplainerConfig,"},
	// PrefixAwareId is a routing hint (requests sharing a prompt prefix
	// go to the same instance): without it routing is still correct, so
	// it is accepted and ignored.
}

// errUnknownOperation answers a request that is no invocation.
var errUnknownOperation = &awsapi.Error{Status: http.StatusBadRequest, Code: "UnknownOperationException",
	Message: "berth's runtime API serves POST /endpoints/{EndpointName}/invocations and /invocations-response-stream"}

// decodeInvocation decodes an invocation request for the router, the same
// way for the fast path and net/http: the endpoint name and operation
// from the escaped path, SageMaker's headers into req, checked against
// the sagemaker-runtime model's constraints. A path that names no
// operation berth serves is an UnknownOperationException.
func decodeInvocation[P ~string | ~[]byte](path P, h headerGetter, req *router.Request) (endpoint string, err error) {
	endpoint, action, ok := parsePath(path)
	if !ok {
		return "", errUnknownOperation
	}
	op := 0
	switch string(action) {
	case "invocations":
		op = opInvoke
	case "invocations-response-stream":
		op = opStream
		req.Stream = true
	default:
		return "", &awsapi.Error{Status: http.StatusBadRequest, Code: "UnknownOperationException",
			Message: "berth does not support /endpoints/{EndpointName}/" + string(action) + " yet"}
	}
	for i := range invocationHeaders {
		hd := &invocationHeaders[i]
		if hd.ops&op == 0 {
			continue
		}
		v := h.Get(hd.name)
		if v == "" {
			continue
		}
		if hd.unsupported != "" {
			return "", fault.New(fault.Invalid, "berth does not support %s yet; send the request without it.", hd.unsupported)
		}
		hd.set(req, v)
	}
	return endpoint, validate(endpoint, req)
}

// parsePath splits an escaped path /endpoints/{name}/{action}. It takes
// the fast path's bytes as they are: only the name becomes a string.
func parsePath[P ~string | ~[]byte](p P) (name string, action P, ok bool) {
	const prefix = "/endpoints/"
	if len(p) <= len(prefix) || string(p[:len(prefix)]) != prefix {
		return "", action, false
	}
	rest := p[len(prefix):]
	slash := -1
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			if slash >= 0 {
				return "", action, false // a slash in the action
			}
			slash = i
		}
	}
	if slash <= 0 {
		return "", action, false
	}
	name, err := url.PathUnescape(string(rest[:slash]))
	if err != nil {
		return "", action, false
	}
	return name, rest[slash+1:], true
}
