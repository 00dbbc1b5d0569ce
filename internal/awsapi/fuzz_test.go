package awsapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berth-io/berth/internal/fault"
)

// FuzzUnmarshalJSON checks that any request body either decodes or yields
// an Invalid error, never a panic or an internal error.
func FuzzUnmarshalJSON(f *testing.F) {
	for _, seed := range []string{
		`{}`, ``, `{"ModelName":"m","PrimaryContainer":{"Image":"i","Environment":{"A":"b"}}}`,
		`{"ModelName":5}`, `{"CreationTimeAfter":1700000000.5}`, `{"CreationTimeAfter":"2024-01-01T00:00:00Z"}`,
		`{"MaxResults":1e400}`, `[1,2]`, `{"a":` + strings.Repeat("[", 100), `{} {}`, `{"CreationTimeAfter":"1e309"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in struct {
			ModelName         string
			MaxResults        *int32
			CreationTimeAfter *Timestamp
			PrimaryContainer  *struct {
				Image       string
				Environment map[string]string
			}
			Variants []struct{ Weight *float32 }
		}
		err := UnmarshalJSON(body, &in)
		if err != nil && fault.KindOf(err) != fault.Invalid {
			t.Fatalf("error of kind %v: %v", fault.KindOf(err), err)
		}
		if err == nil && in.CreationTimeAfter != nil {
			if _, err := json.Marshal(in.CreationTimeAfter); err != nil {
				t.Fatalf("decoded timestamp does not encode: %v", err)
			}
		}
	})
}

// FuzzServiceRouting checks that any Authorization header and path picks
// a handler or answers UnknownOperationException, without panicking.
func FuzzServiceRouting(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=x", "SageMaker.ListModels", "/")
	f.Add("AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/s3/aws4_request", "", "/bucket/key")
	f.Add("", "", "/endpoints/e/invocations")
	f.Add("Credential=/////aws4_request", "AnyScaleFrontendService.X", "/")
	f.Fuzz(func(t *testing.T, auth, target, path string) {
		ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
		h := NewHandler(Services{SageMaker: ok, Runtime: ok, S3: ok}, discardLogger())
		req := httptest.NewRequest(http.MethodPost, "/", nil)
		req.URL.Path = "/" + strings.TrimPrefix(path, "/")
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-Amz-Target", target)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusTeapot && rec.Header().Get("X-Amzn-ErrorType") != "UnknownOperationException" {
			t.Fatalf("status %d without an error type", rec.Code)
		}
	})
}
