package sigv4

// Code says why a request failed verification. Each protocol answers each
// code with its own error code and HTTP status.
type Code int

// The reasons a request can fail verification.
const (
	// Missing: the request carries no signature at all.
	Missing Code = iota + 1
	// Malformed: the Authorization header or the presigned query is not
	// a well-formed SigV4 signature (missing parts, bad algorithm, bad
	// credential scope).
	Malformed
	// UnknownKey: the access key id is not one of the configured keys.
	UnknownKey
	// Mismatch: the signature does not match the one computed from the
	// request and the key's secret.
	Mismatch
	// Skewed: the request time is more than MaxSkew away from now.
	Skewed
	// Expired: a presigned request is used after its expiry.
	Expired
	// PayloadMismatch: the body does not hash to x-amz-content-sha256.
	PayloadMismatch
	// MissingContentSHA256: an S3 request signed in the header without
	// the x-amz-content-sha256 header S3 requires.
	MissingContentSHA256
	// BadChunk: an aws-chunked body is malformed or one of its chunk
	// signatures does not match.
	BadChunk
)

var codeNames = [...]string{"", "missing", "malformed", "unknown key", "mismatch", "skewed", "expired", "payload mismatch", "missing content sha256", "bad chunk"}

func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "code?"
}

// Error is a verification failure. Msg is safe to show to the client.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string { return "sigv4: " + e.Code.String() + ": " + e.Msg }

func fail(c Code, msg string) *Error { return &Error{Code: c, Msg: msg} }

// Preallocated errors for the hot path: a bad request must not cost more
// than a good one.
var (
	errMissing      = fail(Missing, "request is missing authentication: sign it with SigV4 (the AWS SDKs and CLI do, given credentials)")
	errUnknown      = fail(UnknownKey, "the access key id is not known to this server: sign with an access key pair configured in berth (auth.credentials in its config file, or BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY)")
	errMismatch     = fail(Mismatch, "the request signature we calculated does not match the signature you provided; check your secret access key and signing method")
	errSkewed       = fail(Skewed, "the difference between the request time and the server's time is too large: check the client's clock")
	errExpired      = fail(Expired, "request has expired")
	errPayload      = fail(PayloadMismatch, "the provided x-amz-content-sha256 header does not match what was computed")
	errBadChunk     = fail(BadChunk, "the chunk signature does not match, or the aws-chunked body is malformed")
	errHostUnsigned = fail(Malformed, "the Host header must be one of the SignedHeaders")
	errAlgorithm    = fail(Malformed, "unsupported signing algorithm: only AWS4-HMAC-SHA256 is accepted")
)
