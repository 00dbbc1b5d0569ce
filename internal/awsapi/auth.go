package awsapi

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-io/berth/internal/awsapi/sigv4"
	"github.com/berth-io/berth/internal/fault"
)

// AuthCatalog maps signature verification failures to one protocol's
// error codes and statuses.
type AuthCatalog map[sigv4.Code]ErrorCode

// JSONAuthCatalog is the table of the awsJson1_1 services: the SageMaker
// control plane and Application Auto Scaling answer signature failures
// with 400, as the other awsJson services do.
var JSONAuthCatalog = AuthCatalog{
	sigv4.Missing:              {"MissingAuthenticationTokenException", http.StatusBadRequest},
	sigv4.Malformed:            {"IncompleteSignatureException", http.StatusBadRequest},
	sigv4.UnknownKey:           {"UnrecognizedClientException", http.StatusBadRequest},
	sigv4.Mismatch:             {"InvalidSignatureException", http.StatusBadRequest},
	sigv4.Skewed:               {"InvalidSignatureException", http.StatusBadRequest},
	sigv4.Expired:              {"InvalidSignatureException", http.StatusBadRequest},
	sigv4.PayloadMismatch:      {"InvalidSignatureException", http.StatusBadRequest},
	sigv4.MissingContentSHA256: {"IncompleteSignatureException", http.StatusBadRequest},
	sigv4.BadChunk:             {"InvalidSignatureException", http.StatusBadRequest},
}

// RuntimeAuthCatalog is SageMaker Runtime's table: the same codes as the
// control plane, with 403 as the restJson services answer.
var RuntimeAuthCatalog = JSONAuthCatalog.withStatus(http.StatusForbidden)

// withStatus returns a copy of c whose every entry answers status.
func (c AuthCatalog) withStatus(status int) AuthCatalog {
	out := make(AuthCatalog, len(c))
	for k, e := range c {
		e.Status = status
		out[k] = e
	}
	return out
}

// S3AuthCatalog is S3's table (its errors are XML documents).
var S3AuthCatalog = AuthCatalog{
	sigv4.Missing:              {"AccessDenied", http.StatusForbidden},
	sigv4.Malformed:            {"AuthorizationHeaderMalformed", http.StatusBadRequest},
	sigv4.UnknownKey:           {"InvalidAccessKeyId", http.StatusForbidden},
	sigv4.Mismatch:             {"SignatureDoesNotMatch", http.StatusForbidden},
	sigv4.Skewed:               {"RequestTimeTooSkewed", http.StatusForbidden},
	sigv4.Expired:              {"AccessDenied", http.StatusForbidden},
	sigv4.PayloadMismatch:      {"XAmzContentSHA256Mismatch", http.StatusBadRequest},
	sigv4.MissingContentSHA256: {"InvalidRequest", http.StatusBadRequest},
	sigv4.BadChunk:             {"SignatureDoesNotMatch", http.StatusForbidden},
}

// Translate turns a verification failure into an *Error of the catalog's
// protocol. Any other error is returned as is.
func (c AuthCatalog) Translate(err error) error {
	var se *sigv4.Error
	if !errors.As(err, &se) {
		return err
	}
	code, ok := c[se.Code]
	if !ok {
		code = c[sigv4.Mismatch]
	}
	return &Error{Status: code.Status, Code: code.Code, Message: se.Msg, Cause: err}
}

// VerifyBuffered checks the signature of a request whose body is held
// whole in memory, as the JSON protocols' are. A body the client hashed
// into x-amz-content-sha256 must match it; without that header the body's
// hash is what was signed (SageMaker's clients send none). It allocates
// nothing for a request that verifies.
func VerifyBuffered(v *sigv4.Verifier, req *sigv4.Request, body []byte) error {
	a, err := sigv4.Parse(req)
	if err != nil {
		return err
	}
	var sum [64]byte
	payload := req.HeaderValue("X-Amz-Content-Sha256")
	if payload != nil {
		if err := sigv4.CheckPayload(body, payload); err != nil {
			return err
		}
	} else if a.Presigned {
		payload = []byte(sigv4.UnsignedPayload)
	} else {
		payload = sigv4.AppendPayloadHash(sum[:0], body)
	}
	_, err = v.Verify(req, &a, payload)
	return err
}

// authenticate verifies r for protocol p and returns the request and
// response writer to serve it with, or writes the error and returns
// ok == false.
func (rt *router) authenticate(w http.ResponseWriter, r *http.Request, p protocol) (http.ResponseWriter, *http.Request, bool) {
	if p == protoS3 {
		return rt.authenticateS3(w, r)
	}
	catalog, auth := SageMakerCatalog, JSONAuthCatalog
	if p == protoRuntime {
		catalog, auth = RuntimeCatalog, RuntimeAuthCatalog
	}
	// Refuse what can be refused without the body (no signature, an
	// unknown key, a stale date) before reading up to limit bytes of it.
	req := sigv4.FromHTTP(r)
	a, err := sigv4.Parse(req)
	if err == nil {
		err = rt.s.Verifier.Check(req, &a)
	}
	if err != nil {
		WriteError(w, r, rt.logger, catalog, auth.Translate(err))
		return w, r, false
	}
	limit := rt.s.MaxSignedBodyBytes
	if limit <= 0 {
		limit = defaultMaxSignedBody
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	r.Body.Close()
	if err != nil {
		WriteError(w, r, rt.logger, catalog, &Error{Status: http.StatusBadRequest, Code: catalog[fault.Invalid].Code, Message: "could not read the request body", Cause: err})
		return w, r, false
	}
	if int64(len(body)) > limit {
		WriteError(w, r, rt.logger, catalog, &Error{
			Status:  http.StatusRequestEntityTooLarge,
			Code:    "RequestEntityTooLargeException",
			Message: "request body exceeds " + strconv.FormatInt(limit, 10) + " bytes",
		})
		return w, r, false
	}
	if err := VerifyBuffered(rt.s.Verifier, req, body); err != nil {
		WriteError(w, r, rt.logger, catalog, auth.Translate(err))
		return w, r, false
	}
	r.Body = BufferedBody{bytes.NewReader(body)}
	return w, r, true
}

// BufferedBody is a request body already read whole into memory (to
// check its signature): a handler that answers without reading it need
// not close the connection to skip the rest.
type BufferedBody struct{ *bytes.Reader }

// Close does nothing: the bytes are in memory.
func (BufferedBody) Close() error { return nil }

// maxBufferedS3Body: S3 bodies up to this size are read whole and checked
// against x-amz-content-sha256 before the S3 handler runs.
const maxBufferedS3Body = 1 << 20

// defaultMaxSignedBody bounds the body of a JSON request held for its
// hash when Services.MaxSignedBodyBytes is unset.
const defaultMaxSignedBody = 8 << 20

// authenticateS3 verifies an S3 request. Its body may be gigabytes, so it
// is checked as the S3 handler reads it: against x-amz-content-sha256, or
// chunk by chunk for aws-chunked bodies. A body that fails the check fails
// the read (so nothing is stored) and the response becomes the S3 error.
func (rt *router) authenticateS3(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request, bool) {
	if rt.s.SelfAuthenticated != nil && rt.s.SelfAuthenticated(r) {
		return w, r, true
	}
	req := sigv4.FromHTTP(r)
	deny := func(err error) (http.ResponseWriter, *http.Request, bool) {
		WriteS3Error(w, r, rt.logger, S3AuthCatalog.Translate(err))
		return w, r, false
	}
	a, err := sigv4.Parse(req)
	if sigv4.IsPresignedV2Error(err) {
		// boto3's default presigned S3 URLs: the body is not signed. A
		// version 2 signature covers the path, not the Host, so on a
		// virtual host (bucket.localhost) the same URL would address
		// another bucket: such URLs must name the bucket in the path.
		if host, _, _ := strings.Cut(strings.ToLower(r.Host), ":"); strings.HasSuffix(strings.TrimSuffix(host, "."), ".localhost") {
			return deny(&sigv4.Error{Code: sigv4.Malformed, Msg: "a signature version 2 URL must name its bucket in the path, not the Host; presign it for path-style addressing or with signature version 4"})
		}
		if err := rt.s.Verifier.VerifyPresignedV2(req); err != nil {
			return deny(err)
		}
		return w, r, true
	}
	if err != nil {
		return deny(err)
	}
	payload := req.HeaderValue("X-Amz-Content-Sha256")
	if payload == nil {
		if !a.Presigned {
			return deny(&sigv4.Error{Code: sigv4.MissingContentSHA256, Msg: "missing required header for this request: x-amz-content-sha256"})
		}
		payload = []byte(sigv4.UnsignedPayload)
	}
	sg, err := rt.s.Verifier.Verify(req, &a, payload)
	if err != nil {
		return deny(err)
	}
	var check sigv4.BodyChecker
	switch p := string(payload); {
	case p == sigv4.UnsignedPayload || p == "STREAMING-UNSIGNED-PAYLOAD-TRAILER":
		// The client chose not to sign the body (S3 allows it); the
		// S3 handler decodes a trailer body itself.
	case p == sigv4.StreamingPayload:
		decoded, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
		if err != nil || decoded < 0 {
			return deny(&sigv4.Error{Code: sigv4.BadChunk, Msg: "aws-chunked uploads need X-Amz-Decoded-Content-Length"})
		}
		check = sigv4.NewChunkedReader(r.Body, sg, decoded)
		// Hand the S3 handler the decoded payload, as an unsigned
		// body of the decoded length.
		r = r.Clone(r.Context())
		r.Header.Set("X-Amz-Content-Sha256", sigv4.UnsignedPayload)
		r.Header.Set("Content-Length", strconv.FormatInt(decoded, 10))
		r.ContentLength = decoded
	case sigv4.IsHexSHA256(payload):
		if r.ContentLength >= 0 && r.ContentLength <= maxBufferedS3Body {
			// Small bodies (XML documents, small objects) are checked
			// before the handler sees them: a handler that stops
			// reading at a closing tag would never reach the check at
			// the end of a streamed body.
			body, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength+1))
			r.Body.Close()
			if err != nil {
				return deny(&sigv4.Error{Code: sigv4.PayloadMismatch, Msg: "could not read the request body"})
			}
			if err := sigv4.CheckPayload(body, payload); err != nil {
				return deny(err)
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			break
		}
		// Object data: checked as it streams, before its last bytes
		// reach the store.
		check = sigv4.NewHashReader(r.Body, payload, r.ContentLength)
	default:
		return deny(&sigv4.Error{Code: sigv4.Malformed, Msg: "x-amz-content-sha256 must be a hex SHA-256, UNSIGNED-PAYLOAD or STREAMING-AWS4-HMAC-SHA256-PAYLOAD"})
	}
	if check == nil {
		return w, r, true
	}
	if r.Body == nil || r.Body == http.NoBody {
		return w, r, true
	}
	r.Body = checkedBody{BodyChecker: check, Closer: r.Body}
	return &checkedWriter{ResponseWriter: w, r: r, check: check, logger: rt.logger}, r, true
}

type checkedBody struct {
	sigv4.BodyChecker
	io.Closer
}

// checkedWriter answers with the body check's failure, if the body failed
// it, in place of whatever the S3 handler answers.
type checkedWriter struct {
	http.ResponseWriter
	r       *http.Request
	check   sigv4.BodyChecker
	logger  *slog.Logger
	failed  bool
	started bool
}

func (c *checkedWriter) WriteHeader(status int) {
	if c.started {
		return
	}
	c.started = true
	if ferr := c.check.Failed(); ferr != nil {
		c.failed = true
		WriteS3Error(c.ResponseWriter, c.r, c.logger, S3AuthCatalog.Translate(ferr))
		return
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	if !c.started {
		c.WriteHeader(http.StatusOK)
	}
	if c.failed {
		return len(p), nil
	}
	return c.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection.
func (c *checkedWriter) Unwrap() http.ResponseWriter { return c.ResponseWriter }

// WriteS3Error writes err as an S3 XML error document.
func WriteS3Error(w http.ResponseWriter, r *http.Request, logger *slog.Logger, err error) {
	var ae *Error
	if !errors.As(err, &ae) {
		ae = &Error{Status: http.StatusInternalServerError, Code: "InternalError", Message: "internal error", Cause: err}
	}
	logger.Debug("request refused", "request_id", RequestID(r.Context()), "path", r.URL.Path, "code", ae.Code, "err", err)
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<Error><Code>")
	xml.EscapeText(&b, []byte(ae.Code))
	b.WriteString("</Code><Message>")
	xml.EscapeText(&b, []byte(ae.Message))
	b.WriteString("</Message><RequestId>")
	xml.EscapeText(&b, []byte(RequestID(r.Context())))
	b.WriteString("</RequestId></Error>")
	h := w.Header()
	h.Del("Content-Encoding")
	h.Del("ETag")
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(ae.Status)
	if r.Method != http.MethodHead {
		w.Write(b.Bytes())
	}
}
