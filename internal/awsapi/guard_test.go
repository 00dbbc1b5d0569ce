package awsapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/berth-io/berth/internal/h1"
)

func TestGuardHosts(t *testing.T) {
	ctx := context.Background()
	loopback := NewGuard(ctx, GuardOptions{Listen: "127.0.0.1:7070", AllowedHosts: []string{"berth.internal", "*.wild.example", "10.0.0.5", "[fd00::1]"}})
	for host, want := range map[string]bool{
		"localhost": true, "localhost:7070": true, "LocalHost.:7070": true, "a.b.localhost:1": true,
		"127.0.0.1": true, "127.0.0.1:7070": true, "127.255.0.9:80": true, "[::1]:7070": true, "[::1]": true, "::1": true,
		"[::ffff:127.0.0.1]:7070": true,
		"berth.internal:7070":     true, "BERTH.internal": true, "x.wild.example:1": true, "10.0.0.5:7070": true, "[fd00::1]:7070": true,
		"":                     false,
		"evil.example":         false,
		"evil.example:7070":    false,
		"localhost.evil.com":   false,
		"127.0.0.1.evil.com":   false,
		"wild.example":         false,
		"xberth.internal":      false,
		"10.0.0.6:7070":        false,
		"0.0.0.0:7070":         false,
		"localhost:70x":        false,
		"[::1]x":               false,
		"[::1":                 false,
		"2130706433":           false,
		"localhost:7070:7070":  false,
		"[::2]:7070":           false,
		"berth.internal.:7070": true,
	} {
		if got := loopback.HostAllowed(host); got != want {
			t.Errorf("HostAllowed(%q) = %v, want %v", host, got, want)
		}
		req := &h1.FastRequest{Header: []h1.Field{{Name: []byte("Content-Type"), Value: []byte("text/csv")}, {Name: []byte("HOST"), Value: []byte(host)}}}
		if got := loopback.AllowsFast(req); got != want {
			t.Errorf("AllowsFast(Host %q) = %v, want %v", host, got, want)
		}
	}

	// Browsers' requests are for net/http, whatever their Host.
	for _, name := range []string{"Origin", "sec-fetch-site"} {
		req := &h1.FastRequest{Header: []h1.Field{{Name: []byte("Host"), Value: []byte("127.0.0.1:7070")}, {Name: []byte(name), Value: []byte("x")}}}
		if loopback.AllowsFast(req) {
			t.Errorf("AllowsFast with %s", name)
		}
	}

	// On another address the check is off unless hosts are listed; the
	// address itself is allowed.
	open := NewGuard(ctx, GuardOptions{Listen: "0.0.0.0:7070"})
	if !open.HostAllowed("evil.example") {
		t.Error("Host checked on 0.0.0.0 with no allowed_hosts")
	}
	listed := NewGuard(ctx, GuardOptions{Listen: "192.0.2.7:7070", AllowedHosts: []string{"berth.corp"}})
	for host, want := range map[string]bool{"evil.example": false, "berth.corp:7070": true, "192.0.2.7:7070": true, "localhost": true} {
		if got := listed.HostAllowed(host); got != want {
			t.Errorf("192.0.2.7 with allowed_hosts: HostAllowed(%q) = %v", host, got)
		}
	}
	for _, addr := range []string{"localhost:0", "[::1]:0", "127.0.0.2:0", "x.localhost:0"} {
		if g := NewGuard(ctx, GuardOptions{Listen: addr}); g.HostAllowed("evil.example") {
			t.Errorf("listen %s: Host not checked", addr)
		}
	}
	for _, addr := range []string{":7070", "0.0.0.0:7070", "[::]:7070", "192.0.2.7:7070"} {
		if g := NewGuard(ctx, GuardOptions{Listen: addr}); !g.HostAllowed("evil.example") {
			t.Errorf("listen %s: Host checked", addr)
		}
	}
}

// TestGuardFastNoAllocs: the fast path's check of the usual Host values
// allocates nothing.
func TestGuardFastNoAllocs(t *testing.T) {
	g := NewGuard(context.Background(), GuardOptions{Listen: "127.0.0.1:7070"})
	for _, host := range []string{"127.0.0.1:7070", "localhost:7070", "localhost", "[::1]:7070", "127.0.0.1"} {
		req := &h1.FastRequest{Header: []h1.Field{{Name: []byte("Host"), Value: []byte(host)}, {Name: []byte("Content-Type"), Value: []byte("text/csv")}}}
		if n := testing.AllocsPerRun(100, func() { g.AllowsFast(req) }); n != 0 {
			t.Errorf("Host %s: %v allocations", host, n)
		}
	}
}

// TestGuardRefusalShapes: S3 requests get S3's XML error, the others the
// JSON one, each with a request id.
func TestGuardRefusalShapes(t *testing.T) {
	g := NewGuard(context.Background(), GuardOptions{Listen: "127.0.0.1:7070"})
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { t.Error("a refused request was served") }))
	for _, tc := range []struct {
		method, path, target, ctype string
	}{
		{"GET", "/bucket/key", "", "application/xml"},
		{"HEAD", "/bucket/key", "", "application/xml"},
		{"POST", "/", "SageMaker.ListModels", "application/x-amz-json-1.1"},
		{"POST", "/endpoints/e/invocations", "", "application/x-amz-json-1.1"},
	} {
		req := httptest.NewRequest(tc.method, "http://evil.example"+tc.path, nil)
		if tc.target != "" {
			req.Header.Set("X-Amz-Target", tc.target)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusForbidden || rec.Header().Get("Content-Type") != tc.ctype || rec.Header().Get("x-amzn-RequestId") == "" {
			t.Errorf("%s %s: %d %q", tc.method, tc.path, rec.Code, rec.Header().Get("Content-Type"))
		}
		if tc.method == "HEAD" && rec.Body.Len() > 0 {
			t.Errorf("HEAD answered with a body")
		}
	}
}

// FuzzGuardHost: the fast path's Host check agrees with net/http's.
func FuzzGuardHost(f *testing.F) {
	for _, s := range []string{"localhost:7070", "127.0.0.1:1", "[::1]:7070", "::1", "evil.example", "[::1", "a.localhost.", "x.wild.example:1", "127.0.0.1:", ":7070"} {
		f.Add(s)
	}
	g := NewGuard(context.Background(), GuardOptions{Listen: "127.0.0.1:7070", AllowedHosts: []string{"*.wild.example", "10.0.0.5"}})
	f.Fuzz(func(t *testing.T, host string) {
		req := &h1.FastRequest{Header: []h1.Field{{Name: []byte("Host"), Value: []byte(host)}}}
		if a, b := g.HostAllowed(host), g.AllowsFast(req); a != b {
			t.Fatalf("Host %q: HostAllowed %v, AllowsFast %v", host, a, b)
		}
	})
}
