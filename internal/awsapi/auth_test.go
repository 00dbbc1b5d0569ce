package awsapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/berth-io/berth/internal/awsapi/sigv4"
)

// TestAuthJSONBodyReplayed checks the net/http path of the JSON protocols
// (the runtime's fast path is tested in internal/app): a signed body
// reaches the service whole after its hash was checked, and a failure is
// answered in the protocol's shape without reaching the service.
func TestAuthJSONBodyReplayed(t *testing.T) {
	v, err := sigv4.New([]sigv4.Credential{{AccessKeyID: "AKID", SecretAccessKey: "secret"}}, sigv4.Options{})
	if err != nil {
		t.Fatal(err)
	}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write(b)
	})
	srv := httptest.NewServer(NewHandler(Services{SageMaker: echo, Runtime: echo, S3: echo, Verifier: v}, discardLogger()))
	defer srv.Close()

	send := func(path, target, body, secret string) (int, string, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		if target != "" {
			req.Header.Set("X-Amz-Target", target)
		}
		sum := sha256.Sum256([]byte(body))
		if secret != "" {
			creds := aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: secret}
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "sagemaker", "us-east-1", time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), string(b)
	}
	// A query string keeps the request off the runtime's fast path.
	if status, _, body := send("/endpoints/e/invocations?x=1", "", "1,2,3", "secret"); status != 200 || body != "1,2,3" {
		t.Errorf("signed runtime request: %d %q", status, body)
	}
	if status, code, _ := send("/endpoints/e/invocations?x=1", "", "1,2,3", "wrong"); status != 403 || code != "InvalidSignatureException" {
		t.Errorf("runtime, wrong secret: %d %s", status, code)
	}
	if status, _, body := send("/", "SageMaker.ListModels", "{}", "secret"); status != 200 || body != "{}" {
		t.Errorf("signed control plane request: %d %q", status, body)
	}
	// Refused before the body is read: an unsigned request with a body
	// over the limit gets the authentication error, not 413.
	if status, code, _ := send("/", "SageMaker.ListModels", strings.Repeat("x", defaultMaxSignedBody+10), ""); status != 400 || code != "MissingAuthenticationTokenException" {
		t.Errorf("unsigned request with a large body: %d %s", status, code)
	}
	status, code, body := send("/", "SageMaker.ListModels", "{}", "")
	var doc map[string]string
	json.Unmarshal([]byte(body), &doc)
	if status != 400 || code != "MissingAuthenticationTokenException" || doc["__type"] != code || doc["message"] == "" {
		t.Errorf("unsigned control plane request: %d %s %s", status, code, body)
	}
}
