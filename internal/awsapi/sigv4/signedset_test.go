package sigv4_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/berth-io/berth/internal/awsapi/sigv4"
	"github.com/berth-io/berth/internal/h1"
)

// signWithout signs a POST / request by hand over exactly the headers
// named in signed (lower case, sorted), which the SDK signers never leave
// out, and returns it with all of hdr.
func signWithout(hdr [][2]string, signed []string, body string) *sigv4.Request {
	const date, amzDate = "20260304", "20260304T050607Z"
	hdr = append(hdr, [2]string{"X-Amz-Date", amzDate})
	value := func(name string) string {
		for _, h := range hdr {
			if strings.EqualFold(h[0], name) {
				return h[1]
			}
		}
		return ""
	}
	var canon strings.Builder
	canon.WriteString("POST\n/\n\n")
	for _, n := range signed {
		canon.WriteString(n + ":" + value(n) + "\n")
	}
	canon.WriteString("\n" + strings.Join(signed, ";") + "\n" + hashHex([]byte(body)))
	scope := date + "/us-east-1/sagemaker/aws4_request"
	crHash := sha256.Sum256([]byte(canon.String()))
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(crHash[:])
	mac := func(k []byte, s string) []byte { m := hmac.New(sha256.New, k); m.Write([]byte(s)); return m.Sum(nil) }
	k := []byte("AWS4s3cr3t")
	for _, p := range []string{date, "us-east-1", "sagemaker", "aws4_request"} {
		k = mac(k, p)
	}
	sig := hex.EncodeToString(mac(k, sts))
	req := &sigv4.Request{Method: []byte("POST"), Path: []byte("/")}
	for _, h := range hdr {
		req.Header = append(req.Header, h1.Field{Name: []byte(h[0]), Value: []byte(h[1])})
	}
	req.Header = append(req.Header, h1.Field{Name: []byte("Authorization"),
		Value: []byte("AWS4-HMAC-SHA256 Credential=AKIDTEST/" + scope + ", SignedHeaders=" + strings.Join(signed, ";") + ", Signature=" + sig)})
	return req
}

// TestVerifySignedHeaderSet: a signature must cover Host and every x-amz-*
// header of the request, or whoever relays it may change them (an
// X-Amz-Target turns an InvokeEndpoint into a control plane call).
func TestVerifySignedHeaderSet(t *testing.T) {
	v := newVerifier(t, testNow)
	base := [][2]string{{"Host", "127.0.0.1:7070"}, {"Content-Type", "application/json"}}
	for _, tc := range []struct {
		name   string
		hdr    [][2]string
		signed []string
		want   string // failure code, "" for none
	}{
		{"all signed", base, []string{"content-type", "host", "x-amz-date"}, ""},
		{"host unsigned", base, []string{"content-type", "x-amz-date"}, "malformed"},
		{"x-amz-target unsigned", append(base[:2:2], [2]string{"X-Amz-Target", "SageMaker.ListEndpoints"}), []string{"content-type", "host", "x-amz-date"}, "malformed"},
		{"x-amz-target signed", append(base[:2:2], [2]string{"X-Amz-Target", "SageMaker.ListEndpoints"}), []string{"content-type", "host", "x-amz-date", "x-amz-target"}, ""},
		{"x-amz-date unsigned", base, []string{"content-type", "host"}, "malformed"},
		{"other header unsigned", append(base[:2:2], [2]string{"User-Agent", "x"}), []string{"content-type", "host", "x-amz-date"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := signWithout(tc.hdr, tc.signed, "{}")
			a, err := sigv4.Parse(req)
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(req, &a, []byte(hashHex([]byte("{}"))))
			got := ""
			if se, ok := err.(*sigv4.Error); ok {
				got = se.Code.String()
			} else if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Verify: %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}
