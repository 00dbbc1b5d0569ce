// Package runtime speaks the SageMaker Runtime protocol (restJson1):
// POST /endpoints/{EndpointName}/invocations and its siblings, relaying
// each invocation through the router.
package runtime

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/berth-io/berth/internal/awsapi"
	"github.com/berth-io/berth/internal/fault"
	"github.com/berth-io/berth/internal/router"
)

// Invoker is what the handler needs of the router.
type Invoker interface {
	Invoke(ctx context.Context, endpoint string, req router.Request) (*router.Response, error)
}

// Handler serves the runtime API.
type Handler struct {
	router     Invoker
	maxPayload int64
	logger     *slog.Logger
}

// NewHandler returns the runtime handler. maxPayload bounds request bodies
// (SageMaker: 6 MiB).
func NewHandler(r Invoker, maxPayload int64, logger *slog.Logger) *Handler {
	return &Handler{router: r, maxPayload: maxPayload, logger: logger.With("component", "runtime-api")}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, action, ok := parsePath(r.URL.EscapedPath())
	if !ok || r.Method != http.MethodPost {
		h.fail(w, r, &awsapi.Error{Status: http.StatusNotFound, Code: "UnknownOperationException",
			Message: "berth's runtime API serves POST /endpoints/{EndpointName}/invocations"})
		return
	}
	switch action {
	case "invocations":
		h.invoke(w, r, name)
	default:
		h.fail(w, r, &awsapi.Error{Status: http.StatusBadRequest, Code: "UnknownOperationException",
			Message: "berth does not support /endpoints/{EndpointName}/" + action + " yet"})
	}
}

func parsePath(p string) (name, action string, ok bool) {
	rest, ok := strings.CutPrefix(p, "/endpoints/")
	if !ok {
		return "", "", false
	}
	escaped, action, ok := strings.Cut(rest, "/")
	if !ok || escaped == "" || strings.Contains(action, "/") {
		return "", "", false
	}
	name, err := url.PathUnescape(escaped)
	if err != nil {
		return "", "", false
	}
	return name, action, true
}

func (h *Handler) invoke(w http.ResponseWriter, r *http.Request, endpoint string) {
	if r.ContentLength > h.maxPayload {
		h.fail(w, r, tooLarge(h.maxPayload))
		return
	}
	// Read at most one byte past the limit, so an oversized body with no
	// Content-Length is refused without buffering it all.
	body, err := io.ReadAll(io.LimitReader(r.Body, h.maxPayload+1))
	if err != nil {
		h.fail(w, r, fault.Wrap(fault.Invalid, err, "Could not read the request body."))
		return
	}
	if int64(len(body)) > h.maxPayload {
		h.fail(w, r, tooLarge(h.maxPayload))
		return
	}
	req := router.Request{
		Body:             body,
		ContentType:      r.Header.Get("Content-Type"),
		Accept:           r.Header.Get("Accept"),
		CustomAttributes: r.Header.Get("X-Amzn-SageMaker-Custom-Attributes"),
		TargetVariant:    r.Header.Get("X-Amzn-SageMaker-Target-Variant"),
		InferenceID:      r.Header.Get("X-Amzn-SageMaker-Inference-Id"),
	}
	resp, err := h.router.Invoke(r.Context(), endpoint, req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	hd := w.Header()
	if resp.ContentType != "" {
		hd.Set("Content-Type", resp.ContentType)
	} else {
		hd.Set("Content-Type", "application/octet-stream")
	}
	hd.Set("x-Amzn-Invoked-Production-Variant", resp.Variant)
	if resp.CustomAttributes != "" {
		hd.Set("X-Amzn-SageMaker-Custom-Attributes", resp.CustomAttributes)
	}
	hd.Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(http.StatusOK)
	w.Write(resp.Body)
}

func tooLarge(limit int64) error {
	return fault.New(fault.Invalid, "Request body is larger than the %d bytes an InvokeEndpoint request may carry; use asynchronous inference or batch transform for larger payloads.", limit)
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
