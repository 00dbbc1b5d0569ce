package runtime

import (
	"net/http"
	"strings"
	"testing"

	"github.com/berth-io/berth/internal/fault"
	"github.com/berth-io/berth/internal/h1"
	"github.com/berth-io/berth/internal/router"
)

// TestDecodeInvocationBothPaths decodes the same requests from net/http's
// header and from the fast path's, and checks both give the same,
// expected request or error.
func TestDecodeInvocationBothPaths(t *testing.T) {
	type field struct{ name, value string }
	tests := []struct {
		name   string
		path   string
		fields []field
		want   router.Request // the decoded header fields
		ep     string
		err    string // a substring of the error; "" for none
	}{
		{name: "plain", path: "/endpoints/ep/invocations", ep: "ep"},
		{name: "every header", path: "/endpoints/ep/invocations", ep: "ep", fields: []field{
			{"content-type", "text/csv"}, {"ACCEPT", "application/json"},
			{"X-Amzn-SageMaker-Custom-Attributes", "k=v"}, {"x-amzn-sagemaker-target-variant", "Blue"},
			{"X-Amzn-SageMaker-Inference-Id", "inf-1"}, {"X-Amzn-SageMaker-Prefix-Aware-Id", "ignored"},
		}, want: router.Request{ContentType: "text/csv", Accept: "application/json", CustomAttributes: "k=v", TargetVariant: "Blue", InferenceID: "inf-1"}},
		{name: "first field of a name wins", path: "/endpoints/ep/invocations", ep: "ep",
			fields: []field{{"Content-Type", "a/b"}, {"Content-Type", "c/d"}}, want: router.Request{ContentType: "a/b"}},
		{name: "stream takes its own accept", path: "/endpoints/ep/invocations-response-stream", ep: "ep",
			fields: []field{{"Accept", "x/y"}, {"X-Amzn-SageMaker-Accept", "text/event-stream"}},
			want:   router.Request{Accept: "text/event-stream", Stream: true}},
		{name: "escaped name", path: "/endpoints/e%70/invocations", ep: "ep"},
		{name: "no endpoint", path: "/endpoints//invocations", err: "UnknownOperationException"},
		{name: "slash after action", path: "/endpoints/ep/invocations/", err: "UnknownOperationException"},
		{name: "not an endpoint path", path: "/endpoints/", err: "UnknownOperationException"},
		{name: "unknown action", path: "/endpoints/ep/invocations-async", err: "does not support /endpoints/{EndpointName}/invocations-async"},
		{name: "bad endpoint name", path: "/endpoints/-ep/invocations", err: "endpointName"},
		{name: "bad inference id", path: "/endpoints/ep/invocations", fields: []field{{"X-Amzn-SageMaker-Inference-Id", " x"}}, err: "inferenceId"},
		{name: "target model", path: "/endpoints/ep/invocations", fields: []field{{"X-Amzn-SageMaker-Target-Model", "m.tar.gz"}}, err: "does not support TargetModel (header X-Amzn-SageMaker-Target-Model)"},
		{name: "target container", path: "/endpoints/ep/invocations-response-stream", fields: []field{{"X-Amzn-SageMaker-Target-Container-Hostname", "c1"}}, err: "TargetContainerHostname"},
		{name: "inference component", path: "/endpoints/ep/invocations", fields: []field{{"x-amzn-sagemaker-inference-component", "ic"}}, err: "InferenceComponentName"},
		{name: "session", path: "/endpoints/ep/invocations", fields: []field{{"X-Amzn-SageMaker-Session-Id", "NEW_SESSION"}}, err: "SessionId"},
		{name: "explanations", path: "/endpoints/ep/invocations", fields: []field{{"X-Amzn-SageMaker-Enable-Explanations", "`true`"}}, err: "EnableExplanations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hh := http.Header{}
			fr := &h1.FastRequest{}
			for _, f := range tt.fields {
				hh.Add(f.name, f.value)
				fr.Header = append(fr.Header, h1.Field{Name: []byte(f.name), Value: []byte(f.value)})
			}
			var viaHTTP, viaFast router.Request
			ep1, err1 := decodeInvocation(tt.path, hh, &viaHTTP)
			ep2, err2 := decodeInvocation([]byte(tt.path), fastHeader{fr}, &viaFast)
			if ep1 != ep2 || decoded(viaHTTP) != decoded(viaFast) || errString(err1) != errString(err2) {
				t.Fatalf("paths differ:\nnet/http %q %+v %v\nfast     %q %+v %v", ep1, viaHTTP, err1, ep2, viaFast, err2)
			}
			if tt.err != "" {
				if err1 == nil || !strings.Contains(err1.Error()+errCode(err1), tt.err) {
					t.Fatalf("error %v, want one containing %q", err1, tt.err)
				}
				return
			}
			if err1 != nil || ep1 != tt.ep || decoded(viaHTTP) != decoded(tt.want) {
				t.Fatalf("got %q %+v %v, want %q %+v", ep1, viaHTTP, err1, tt.ep, tt.want)
			}
		})
	}
}

// decoded is the part of a router.Request that decodeInvocation sets.
type decodedFields struct {
	contentType, accept, customAttributes, targetVariant, inferenceID string
	stream                                                            bool
}

func decoded(r router.Request) decodedFields {
	return decodedFields{r.ContentType, r.Accept, r.CustomAttributes, r.TargetVariant, r.InferenceID, r.Stream}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func errCode(err error) string {
	if fault.KindOf(err) == fault.Invalid {
		return " ValidationError"
	}
	return " UnknownOperationException"
}

// TestDecodeInvocationFastAllocations: on the fast path, decoding costs
// the endpoint name's string and one string per header present, nothing
// per header looked up.
func TestDecodeInvocationFastAllocations(t *testing.T) {
	fr := &h1.FastRequest{Header: []h1.Field{
		{Name: []byte("Host"), Value: []byte("localhost")},
		{Name: []byte("Content-Type"), Value: []byte("text/csv")},
		{Name: []byte("Content-Length"), Value: []byte("3")},
	}}
	path := []byte("/endpoints/ep/invocations")
	var req router.Request
	allocs := testing.AllocsPerRun(100, func() {
		req = router.Request{}
		if _, err := decodeInvocation(path, fastHeader{fr}, &req); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 2 {
		t.Errorf("%.0f allocations per decode, want at most 2 (the endpoint name and Content-Type)", allocs)
	}
}

// BenchmarkDecodeInvocation is the decoding of a typical request (a Host,
// a Content-Type, a Content-Length and a signature) on each path.
func BenchmarkDecodeInvocation(b *testing.B) {
	fields := [][2]string{{"Host", "localhost:7070"}, {"Content-Type", "text/csv"}, {"Content-Length", "64"},
		{"X-Amz-Date", "20260101T000000Z"}, {"Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=abc"}}
	fr := &h1.FastRequest{Path: []byte("/endpoints/bench/invocations")}
	hh := http.Header{}
	for _, f := range fields {
		fr.Header = append(fr.Header, h1.Field{Name: []byte(f[0]), Value: []byte(f[1])})
		hh.Add(f[0], f[1])
	}
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		var req router.Request
		for b.Loop() {
			req = router.Request{}
			if _, err := decodeInvocation(fr.Path, fastHeader{fr}, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("net-http", func(b *testing.B) {
		b.ReportAllocs()
		var req router.Request
		for b.Loop() {
			req = router.Request{}
			if _, err := decodeInvocation("/endpoints/bench/invocations", hh, &req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
