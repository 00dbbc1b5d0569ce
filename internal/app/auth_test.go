package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smtypes "github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemakerruntime"
	"github.com/aws/smithy-go"

	"github.com/berth-io/berth/internal/app"
	"github.com/berth-io/berth/internal/config"
	"github.com/berth-io/berth/internal/modelserver/builtin"
)

// The harness's clients sign with this pair.
const (
	testKeyID  = "AKIDEXAMPLE"
	testSecret = "secret"
)

func startAuthServer(t *testing.T) *server {
	t.Helper()
	cfg := testConfig(t, t.TempDir())
	cfg.Auth.Credentials = []config.Credential{{AccessKeyID: "AKIDSPARE", SecretAccessKey: "spare"}, {AccessKeyID: testKeyID, SecretAccessKey: testSecret}}
	return startServer(t, cfg)
}

// authClients are SDK clients with the given credentials and transport
// that never retry, so each test sees the server's first answer.
func authClients(url string, creds aws.CredentialsProvider, rt http.RoundTripper) (*sagemaker.Client, *sagemakerruntime.Client, *s3.Client) {
	awsCfg := aws.Config{
		Region:                     "us-east-1",
		Credentials:                creds,
		HTTPClient:                 &http.Client{Timeout: time.Minute, Transport: rt},
		Retryer:                    func() aws.Retryer { return aws.NopRetryer{} },
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
	}
	sm := sagemaker.NewFromConfig(awsCfg, func(o *sagemaker.Options) { o.BaseEndpoint = aws.String(url) })
	rtc := sagemakerruntime.NewFromConfig(awsCfg, func(o *sagemakerruntime.Options) { o.BaseEndpoint = aws.String(url) })
	s3c := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(url)
		o.UsePathStyle = true
	})
	return sm, rtc, s3c
}

// tamperTransport changes one byte of every request body after the SDK
// signed it.
type tamperTransport struct{}

func (tamperTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.ContentLength > 0 {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		b[len(b)/2] ^= 0x01
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(b))
	}
	return http.DefaultTransport.RoundTrip(r)
}

// staleTransport signs every request again as if the client's clock were
// 20 minutes slow.
type staleTransport struct{ creds aws.Credentials }

func (s staleTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		var err error
		if body, err = io.ReadAll(r.Body); err != nil {
			return nil, err
		}
	}
	r = r.Clone(r.Context())
	r.Body = io.NopCloser(bytes.NewReader(body))
	auth := r.Header.Get("Authorization")
	scope := strings.Split(strings.Split(auth, "Credential=")[1], "/")
	service := scope[3]
	hash := r.Header.Get("X-Amz-Content-Sha256")
	if hash == "" {
		sum := sha256.Sum256(body)
		hash = hex.EncodeToString(sum[:])
	}
	r.Header.Del("Authorization")
	r.Header.Del("X-Amz-Date")
	err := v4.NewSigner().SignHTTP(r.Context(), s.creds, r, hash, service, scope[2], time.Now().Add(-20*time.Minute),
		func(o *v4.SignerOptions) { o.DisableURIPathEscaping = service == "s3" })
	if err != nil {
		return nil, err
	}
	return http.DefaultTransport.RoundTrip(r)
}

func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "not an API error: " + err.Error()
	}
	return ""
}

func TestAuthSDKClients(t *testing.T) {
	s := startAuthServer(t)
	ctx := context.Background()
	s.deploy(t, "signed", nil, "", 1)
	s.upload(t, "authbucket", "present", []byte("hello"))
	if got, err := s.invoke(t, "signed", "1,2,3"); err != nil {
		t.Fatalf("signed invoke (fast path): %v", err)
	} else if got == "" {
		t.Fatal("signed invoke: empty answer")
	}

	good := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
	static := func(id, secret string) aws.CredentialsProvider {
		return credentials.NewStaticCredentialsProvider(id, secret, "")
	}
	tests := []struct {
		name        string
		creds       aws.CredentialsProvider
		rt          http.RoundTripper
		sm, run, s3 string // the error code each protocol answers
	}{
		{"right keys", static(testKeyID, testSecret), nil, "", "", ""},
		{"wrong secret", static(testKeyID, "not-the-secret"), nil, "InvalidSignatureException", "InvalidSignatureException", "SignatureDoesNotMatch"},
		{"unknown key", static("AKIDUNKNOWN", testSecret), nil, "UnrecognizedClientException", "UnrecognizedClientException", "InvalidAccessKeyId"},
		{"tampered body", static(testKeyID, testSecret), tamperTransport{}, "InvalidSignatureException", "InvalidSignatureException", "XAmzContentSHA256Mismatch"},
		{"stale date", static(testKeyID, testSecret), staleTransport{good}, "InvalidSignatureException", "InvalidSignatureException", "RequestTimeTooSkewed"},
		{"missing signature", aws.AnonymousCredentials{}, nil, "MissingAuthenticationTokenException", "MissingAuthenticationTokenException", "AccessDenied"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sm, rtc, s3c := authClients(s.url, tc.creds, tc.rt)
			model := fmt.Sprintf("authmodel-%d", i)
			_, err := sm.CreateModel(ctx, &sagemaker.CreateModelInput{
				ModelName:        aws.String(model),
				ExecutionRoleArn: aws.String("arn:aws:iam::000000000000:role/berth"),
				PrimaryContainer: &smtypes.ContainerDefinition{Image: aws.String(testImage)},
			})
			if got := errorCode(err); got != tc.sm {
				t.Errorf("CreateModel: code %q, want %q (%v)", got, tc.sm, err)
			}
			if tc.sm != "" {
				// Refused requests change nothing.
				if _, err := s.sm.DescribeModel(ctx, &sagemaker.DescribeModelInput{ModelName: aws.String(model)}); err == nil {
					t.Errorf("refused CreateModel created model %s", model)
				}
			}
			_, err = rtc.InvokeEndpoint(ctx, &sagemakerruntime.InvokeEndpointInput{
				EndpointName: aws.String("signed"), ContentType: aws.String("text/csv"), Body: []byte("4,5,6"),
			})
			if got := errorCode(err); got != tc.run {
				t.Errorf("InvokeEndpoint: code %q, want %q (%v)", got, tc.run, err)
			}
			key := fmt.Sprintf("obj-%d", i)
			_, err = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("authbucket"), Key: aws.String(key), Body: bytes.NewReader([]byte("some data"))})
			if got := errorCode(err); got != tc.s3 {
				t.Errorf("PutObject: code %q, want %q (%v)", got, tc.s3, err)
			}
			_, herr := s.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("authbucket"), Key: aws.String(key)})
			if stored := herr == nil; stored != (tc.s3 == "") {
				t.Errorf("PutObject refused=%v but object stored=%v", tc.s3 != "", stored)
			}
			_, err = s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("authbucket"), Key: aws.String("present")})
			if tc.s3 != "" && tc.rt == nil && err == nil {
				t.Errorf("GetObject with %s succeeded", tc.name)
			}
		})
	}
}

func TestAuthS3Presigned(t *testing.T) {
	s := startAuthServer(t)
	ctx := context.Background()
	s.upload(t, "pre", "existing", []byte("presigned content"))
	ps := s3.NewPresignClient(s.s3)

	get, err := ps.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("pre"), Key: aws.String("existing")})
	if err != nil {
		t.Fatal(err)
	}
	status, body := fetch(t, http.MethodGet, get.URL, nil, nil)
	if status != 200 || body != "presigned content" {
		t.Errorf("presigned GET: %d %q", status, body)
	}
	status, body = fetch(t, http.MethodGet, strings.Replace(get.URL, "/existing?", "/other?", 1), nil, nil)
	if status != 403 || !strings.Contains(body, "<Code>SignatureDoesNotMatch</Code>") {
		t.Errorf("presigned GET of another key: %d %s", status, body)
	}

	put, err := ps.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("pre"), Key: aws.String("uploaded")})
	if err != nil {
		t.Fatal(err)
	}
	status, body = fetch(t, http.MethodPut, put.URL, put.SignedHeader, []byte("put through a presigned URL"))
	if status != 200 {
		t.Fatalf("presigned PUT: %d %s", status, body)
	}
	out, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("pre"), Key: aws.String("uploaded")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(got) != "put through a presigned URL" {
		t.Errorf("object from presigned PUT = %q", got)
	}
}

func fetch(t *testing.T, method, url string, hdr http.Header, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range hdr {
		if k != "Host" {
			req.Header[k] = vs
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestAuthS3SignedChunks uploads aws-chunked bodies whose chunks are
// signed with the SDK's stream signer (STREAMING-AWS4-HMAC-SHA256-PAYLOAD):
// good chunks store the payload; one tampered chunk fails the upload and
// stores nothing.
func TestAuthS3SignedChunks(t *testing.T) {
	s := startAuthServer(t)
	ctx := context.Background()
	if _, err := s.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("chunks")}); err != nil {
		t.Fatal(err)
	}
	creds := aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}
	chunks := [][]byte{bytes.Repeat([]byte("a"), 64<<10), bytes.Repeat([]byte("b"), 64<<10), []byte("tail")}
	var payload []byte
	for _, c := range chunks {
		payload = append(payload, c...)
	}
	upload := func(key string, tamper func([]byte) []byte) (int, string) {
		now := time.Now()
		req, _ := http.NewRequest(http.MethodPut, s.url+"/chunks/"+key, nil)
		req.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
		req.Header.Set("Content-Encoding", "aws-chunked")
		req.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(len(payload)))
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "s3", "us-east-1", now,
			func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }); err != nil {
			t.Fatal(err)
		}
		auth := req.Header.Get("Authorization")
		seed, _ := hex.DecodeString(auth[strings.LastIndex(auth, "=")+1:])
		ss := v4.NewStreamSigner(creds, "s3", "us-east-1", seed)
		var body bytes.Buffer
		for _, c := range append(chunks, nil) {
			sig, err := ss.GetSignature(ctx, nil, c, now)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&body, "%x;chunk-signature=%x\r\n%s\r\n", len(c), sig, c)
		}
		b := body.Bytes()
		if tamper != nil {
			b = tamper(b)
		}
		return fetch(t, http.MethodPut, req.URL.String(), req.Header, b)
	}
	if status, body := upload("good", nil); status != 200 {
		t.Fatalf("signed chunks: %d %s", status, body)
	}
	out, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("chunks"), Key: aws.String("good")})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, payload) {
		t.Errorf("stored %d bytes, want the %d decoded", len(got), len(payload))
	}
	if ce := aws.ToString(out.ContentEncoding); strings.Contains(ce, "aws-chunked") {
		t.Errorf("stored Content-Encoding %q", ce)
	}

	for name, tamper := range map[string]func([]byte) []byte{
		"second chunk": func(b []byte) []byte { b[64<<10+200] = 'c'; return b },
		"last chunk":   func(b []byte) []byte { return bytes.Replace(b, []byte("tail"), []byte("tall"), 1) },
		"final signature": func(b []byte) []byte {
			i := bytes.LastIndex(b, []byte("chunk-signature=")) + len("chunk-signature=")
			if b[i] == '0' {
				b[i] = '1'
			} else {
				b[i] = '0'
			}
			return b
		},
	} {
		key := "tampered-" + strings.ReplaceAll(name, " ", "-")
		status, body := upload(key, tamper)
		if status != 403 || !strings.Contains(body, "<Code>SignatureDoesNotMatch</Code>") {
			t.Errorf("tampered %s: %d %s", name, status, body)
		}
		if _, err := s.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("chunks"), Key: aws.String(key)}); err == nil {
			t.Errorf("tampered %s: object stored", name)
		}
	}
}

func TestAuthOwnPathsUnauthenticated(t *testing.T) {
	s := startAuthServer(t)
	for _, p := range []string{"/ping", "/metrics"} {
		if status, _ := fetch(t, http.MethodGet, s.url+p, nil, nil); status != 200 {
			t.Errorf("GET %s with authentication on: %d", p, status)
		}
	}
	if status, body := fetch(t, http.MethodGet, s.url+"/", nil, nil); status != 403 || !strings.Contains(body, "AccessDenied") {
		t.Errorf("unsigned ListBuckets: %d %s", status, body)
	}
}

func TestMetricsPath(t *testing.T) {
	for _, tc := range []struct{ path, at, notAt string }{
		{"/metrics", "/metrics", ""},
		{"/internal/prom", "/internal/prom", "/metrics"},
		{"", "", "/metrics"},
	} {
		cfg := testConfig(t, t.TempDir())
		cfg.Metrics.Path = tc.path
		s := startServer(t, cfg)
		if tc.at != "" {
			if status, body := fetch(t, http.MethodGet, s.url+tc.at, nil, nil); status != 200 || !strings.Contains(body, "# TYPE") {
				t.Errorf("path %q: GET %s = %d", tc.path, tc.at, status)
			}
		}
		if tc.notAt != "" {
			if _, body := fetch(t, http.MethodGet, s.url+tc.notAt, nil, nil); strings.Contains(body, "# TYPE") {
				t.Errorf("path %q: GET %s still serves metrics", tc.path, tc.notAt)
			}
		}
	}
}

func TestAuthModeRules(t *testing.T) {
	ctx := context.Background()
	newApp := func(listen string, creds bool, insecure bool) error {
		cfg := testConfig(t, t.TempDir())
		cfg.Listen = listen
		cfg.Auth.Insecure = insecure
		if creds {
			cfg.Auth.Credentials = []config.Credential{{AccessKeyID: testKeyID, SecretAccessKey: testSecret}}
		}
		a, err := app.New(ctx, cfg, app.Options{Frameworks: builtin.Frameworks()})
		if err == nil {
			a.Shutdown(ctx)
		}
		return err
	}
	if err := newApp("0.0.0.0:0", false, false); !errors.Is(err, app.ErrNoCredentials) || !strings.Contains(err.Error(), "BERTH_ACCESS_KEY_ID") {
		t.Errorf("non-loopback without credentials: %v, want a refusal saying how to configure credentials", err)
	}
	if err := newApp("0.0.0.0:0", false, true); err != nil {
		t.Errorf("non-loopback, --insecure: %v", err)
	}
	if err := newApp("0.0.0.0:0", true, false); err != nil {
		t.Errorf("non-loopback with credentials: %v", err)
	}
	for _, l := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0"} {
		if err := newApp(l, false, false); err != nil {
			t.Errorf("%s without credentials: %v", l, err)
		}
	}
}

// TestAuthS3LargeTamperedBody: an object larger than what is checked up
// front is checked as it streams; a tampered one is refused and not
// stored, an intact one is.
func TestAuthS3LargeTamperedBody(t *testing.T) {
	s := startAuthServer(t)
	ctx := context.Background()
	if _, err := s.s3.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("large")}); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 3<<16) // 3 MiB
	for _, tc := range []struct {
		key  string
		rt   http.RoundTripper
		want string
	}{
		{"intact", nil, ""},
		{"tampered", tamperTransport{}, "XAmzContentSHA256Mismatch"},
	} {
		_, _, c := authClients(s.url, credentials.NewStaticCredentialsProvider(testKeyID, testSecret, ""), tc.rt)
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("large"), Key: aws.String(tc.key), Body: bytes.NewReader(data)})
		if got := errorCode(err); got != tc.want {
			t.Errorf("%s: code %q, want %q (%v)", tc.key, got, tc.want, err)
		}
		_, herr := s.s3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("large"), Key: aws.String(tc.key)})
		if stored := herr == nil; stored != (tc.want == "") {
			t.Errorf("%s: stored = %v", tc.key, stored)
		}
	}
}
