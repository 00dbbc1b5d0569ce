package awsapi

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestServiceSelection(t *testing.T) {
	mk := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Header().Set("X-Service", name) })
	}
	h := NewHandler(Services{SageMaker: mk("sagemaker"), Runtime: mk("runtime"), S3: mk("s3"),
		Extra: map[string]http.Handler{"/metrics": mk("metrics")}}, discardLogger())
	sig := func(svc string) string {
		return "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/" + svc + "/aws4_request, SignedHeaders=host, Signature=abc"
	}
	tests := []struct {
		name, method, path, auth, target, query, want string
	}{
		{"signed control plane", "POST", "/", sig("sagemaker"), "SageMaker.ListModels", "", "sagemaker"},
		{"signed runtime", "POST", "/endpoints/e/invocations", sig("sagemaker"), "", "", "runtime"},
		{"signed s3 on a bucket named endpoints", "PUT", "/endpoints/invocations", sig("s3"), "", "", "s3"},
		// Application Auto Scaling is not served yet: a clear
		// UnknownOperationException, signed or not.
		{"signed autoscaling", "POST", "/", sig("application-autoscaling"), "AnyScaleFrontendService.RegisterScalableTarget", "", ""},
		{"unsigned autoscaling", "POST", "/", "", "AnyScaleFrontendService.RegisterScalableTarget", "", ""},
		{"presigned s3", "GET", "/b/k", "", "", "X-Amz-Credential=AKID%2F20260101%2Fus-east-1%2Fs3%2Faws4_request", "s3"},
		{"unsigned control plane", "POST", "/", "", "SageMaker.ListModels", "", "sagemaker"},
		{"unsigned runtime", "POST", "/endpoints/e/invocations", "", "", "", "runtime"},
		{"unsigned s3", "GET", "/bucket", "", "", "", "s3"},
		{"unsigned metrics", "GET", "/metrics", "", "", "", "metrics"},
		{"unknown signed service", "POST", "/", sig("dynamodb"), "DynamoDB_20120810.ListTables", "", ""},
		{"control plane target on the s3 scope", "POST", "/", sig("sagemaker"), "S3.Foo", "", ""},
		{"runtime path with a control plane target", "POST", "/endpoints/e/invocations", sig("sagemaker"), "SageMaker.ListModels", "", "sagemaker"},
		{"runtime path, unsigned, unknown target", "POST", "/endpoints/e/invocations", "", "Foo.Bar", "", ""},
		{"runtime path on the s3 scope", "POST", "/endpoints/e/invocations", sig("s3"), "", "", "s3"},
		{"runtime path on an unknown scope", "POST", "/endpoints/e/invocations", sig("dynamodb"), "", "", ""},
		{"runtime path, not SigV4", "POST", "/endpoints/e/invocations", "Bearer x", "", "", "runtime"},
		{"runtime path, short scope", "POST", "/endpoints/e/invocations", "AWS4-HMAC-SHA256 Credential=a/sagemaker/aws4_request, x", "", "", "runtime"},
		{"runtime path, scope without aws4_request", "POST", "/endpoints/e/invocations", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/s3/x, y", "", "", "runtime"},
		{"runtime path, credential without comma", "POST", "/endpoints/e/invocations", "AWS4-HMAC-SHA256 Credential= AKID/20260101/us-east-1/sagemaker/aws4_request ", "", "", "runtime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.path+"?"+tt.query, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			if tt.target != "" {
				req.Header.Set("X-Amz-Target", tt.target)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if got := rec.Header().Get("X-Service"); got != tt.want {
				t.Errorf("service %q, want %q (status %d, error %s)", got, tt.want, rec.Code, rec.Header().Get("X-Amzn-ErrorType"))
			}
			if rec.Header().Get("x-amzn-RequestId") == "" {
				t.Error("no request id")
			}
			if strings.HasPrefix(tt.path, "/endpoints/") && tt.query == "" {
				if got := RoutesToRuntime([]byte(tt.target), []byte(tt.auth)); got != (tt.want == "runtime") {
					t.Errorf("RoutesToRuntime = %v, handler chose %q", got, tt.want)
				}
			}
			if tt.want == "" && rec.Header().Get("X-Amzn-ErrorType") != "UnknownOperationException" {
				t.Errorf("error type %q", rec.Header().Get("X-Amzn-ErrorType"))
			}
		})
	}
}

func TestRequestIDShape(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := newRequestID()
		if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
			t.Fatalf("id %q is not in UUID layout", id)
		}
		if seen[id] {
			t.Fatalf("id %q repeated", id)
		}
		seen[id] = true
	}
}
