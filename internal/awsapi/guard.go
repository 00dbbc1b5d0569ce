package awsapi

import (
	"bytes"
	"context"
	"encoding/xml"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/berth-io/berth/internal/h1"
)

// The browser guard keeps web pages out. berth runs whatever its API tells
// it to, so a page on another site that reaches it — through a loopback
// address in the visitor's browser, or by DNS rebinding a name of its own
// to that address — must get nowhere:
//
//   - Host check: on a loopback address only loopback names and addresses
//     (and names the config lists) are served. A rebound page's requests
//     carry its own name in Host, so they are refused before anything else
//     looks at them.
//   - Cross-origin requests: preflights are refused and no response carries
//     Access-Control-* headers unless the config lists the origin; a
//     request a browser marks as cross-origin (Sec-Fetch-Site, or an Origin
//     that is not the Host) is refused for any method but GET and HEAD, so
//     a page cannot even fire blind "simple" requests (a text/plain
//     InvokeEndpoint, a form POST to a bucket).
//
// Browsers send Origin or Sec-Fetch-Site; the AWS SDKs and CLI send
// neither, so they never meet the second rule.

// GuardOptions configures NewGuard.
type GuardOptions struct {
	// Listen is the address berth listens on. On a loopback address the
	// Host check is on; an IP address there is always an allowed Host.
	Listen string
	// AllowedHosts are Host names or IP addresses served besides the
	// loopback ones; "*.example.com" allows the names under example.com.
	// When set, the Host check is on whatever the address.
	AllowedHosts []string
	// AllowedOrigins are the web origins granted CORS.
	AllowedOrigins []string
	// Unauthenticated says requests are not signature-checked (no
	// credentials, --insecure). On a non-loopback address the Host check
	// is then on too, with every IP address allowed: DNS rebinding needs
	// a name of the attacker's, and a rebound page would otherwise own
	// an API that runs code without asking who calls.
	Unauthenticated bool
	Logger          *slog.Logger
}

// Guard is the browser guard: an http.Handler wrapper (Wrap) and the
// check the InvokeEndpoint fast path asks before taking a request
// (AllowsFast).
type Guard struct {
	checkHost bool
	anyIP     bool // every IP address is an allowed Host
	hosts     map[string]bool
	ips       map[netip.Addr]bool
	suffixes  []string // ".example.com" for "*.example.com"
	origins   map[string]bool
	cross     *http.CrossOriginProtection
	logger    *slog.Logger
}

// NewGuard returns the guard for o. Entries of o are expected to have
// passed config validation; ones that do not parse are ignored. A listen
// host that is a name is resolved (under ctx) to tell whether it is
// loopback.
func NewGuard(ctx context.Context, o GuardOptions) *Guard {
	listenHost, _, _ := net.SplitHostPort(o.Listen)
	loopback := listensOnLoopback(ctx, listenHost)
	g := &Guard{
		checkHost: len(o.AllowedHosts) > 0 || loopback || o.Unauthenticated,
		anyIP:     o.Unauthenticated && !loopback,
		hosts:     map[string]bool{},
		ips:       map[netip.Addr]bool{},
		origins:   map[string]bool{},
		cross:     http.NewCrossOriginProtection(),
		logger:    o.Logger,
	}
	if g.logger == nil {
		g.logger = slog.New(slog.DiscardHandler)
	}
	for _, h := range o.AllowedHosts {
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		if ip, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
			g.ips[ip.Unmap()] = true
		} else if d, ok := strings.CutPrefix(h, "*."); ok {
			g.suffixes = append(g.suffixes, "."+d)
		} else {
			g.hosts[h] = true
		}
	}
	if ip, err := netip.ParseAddr(strings.Trim(listenHost, "[]")); err == nil && !ip.IsUnspecified() {
		g.ips[ip.Unmap()] = true
	}
	for _, origin := range o.AllowedOrigins {
		origin = normalizeOrigin(origin)
		if g.cross.AddTrustedOrigin(origin) == nil {
			g.origins[origin] = true
		}
	}
	return g
}

// listensOnLoopback reports whether a listen host (no port) is loopback:
// "localhost", a name under ".localhost", an address in 127.0.0.0/8 or
// ::1, or a name that resolves to such addresses only. An empty host
// (every interface) is not.
func listensOnLoopback(ctx context.Context, host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return false
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return ip.Unmap().IsLoopback()
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(ips) == 0 {
		return false // net.Listen will fail on it anyway
	}
	for _, ip := range ips {
		if !ip.Unmap().IsLoopback() {
			return false
		}
	}
	return true
}

// normalizeOrigin puts an origin in the form browsers send: lower case,
// no trailing "/", no default port.
func normalizeOrigin(o string) string {
	o = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(o)), "/")
	if strings.HasPrefix(o, "https://") {
		return strings.TrimSuffix(o, ":443")
	}
	return strings.TrimSuffix(o, ":80")
}

// HostAllowed reports whether a request with this Host header value
// (host and optional port) is served.
func (g *Guard) HostAllowed(host string) bool {
	if !g.checkHost {
		return true
	}
	h := hostOnly(host)
	if h == "" {
		return false
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	if ip, err := netip.ParseAddr(h); err == nil {
		ip = ip.Unmap()
		return ip.IsLoopback() || g.ips[ip] || g.anyIP
	}
	if g.hosts[h] {
		return true
	}
	for _, s := range g.suffixes {
		if len(h) > len(s) && strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// hostOnly returns the host of a Host header value, lower-cased, without
// port, brackets or a trailing dot.
func hostOnly(hostport string) string {
	h := hostport
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return ""
		}
		if rest := h[end+1:]; rest != "" && !validPort(rest) {
			return ""
		}
		h = h[1:end]
	} else if i := strings.LastIndexByte(h, ':'); i >= 0 && strings.IndexByte(h, ':') == i {
		if !validPort(h[i:]) {
			return ""
		}
		h = h[:i]
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// validPort reports whether s is ":" and digits (or just ":").
func validPort(s string) bool {
	if s == "" || s[0] != ':' {
		return false
	}
	for _, c := range s[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// AllowsFast reports whether the InvokeEndpoint fast path, which bypasses
// Wrap, may take req: its Host is allowed and it carries neither Origin
// nor Sec-Fetch-Site (a browser's requests go through net/http and Wrap).
// The fast path declines what this refuses, so net/http answers it with
// the guard's error.
func (g *Guard) AllowsFast(req *h1.FastRequest) bool {
	var host []byte
	for i := range req.Header {
		name := req.Header[i].Name
		switch len(name) {
		case 4:
			if bytes.EqualFold(name, []byte("host")) {
				host = req.Header[i].Value
			}
		case 6:
			if bytes.EqualFold(name, []byte("origin")) {
				return false
			}
		case 14:
			if bytes.EqualFold(name, []byte("sec-fetch-site")) {
				return false
			}
		}
	}
	if !g.checkHost {
		return true
	}
	// The usual loopback forms without converting to a string (this is
	// on every fast-path request).
	h := host
	if i := bytes.LastIndexByte(h, ':'); i > 0 && h[i-1] != ':' && validPortBytes(h[i:]) {
		h = h[:i]
	}
	switch string(h) {
	case "127.0.0.1", "localhost", "[::1]":
		return true
	}
	return g.HostAllowed(string(host))
}

func validPortBytes(b []byte) bool {
	if len(b) == 0 || b[0] != ':' {
		return false
	}
	for _, c := range b[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Wrap returns next behind the guard.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.HostAllowed(r.Host) {
			g.refuse(w, r, "AccessDenied", "AccessDeniedException",
				"berth refuses requests for Host "+strconv.Quote(r.Host)+": it serves loopback names (localhost, 127.0.0.1, [::1]) and the names listed under allowed_hosts in the config, which stops DNS rebinding; to allow this name, add it to allowed_hosts")
			return
		}
		origin := r.Header.Get("Origin")
		if r.Method == http.MethodOptions && origin != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			g.preflight(w, r, origin)
			return
		}
		if err := g.cross.Check(r); err != nil {
			g.refuse(w, r, "AccessDenied", "AccessDeniedException",
				"berth refuses cross-origin requests from web pages (origin "+strconv.Quote(origin)+"); to allow this origin, list it under cors.allowed_origins in the config")
			return
		}
		if origin != "" && len(g.origins) > 0 {
			h := w.Header()
			h.Add("Vary", "Origin")
			if g.origins[normalizeOrigin(origin)] {
				h.Set("Access-Control-Allow-Origin", origin)
				h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// CORS grants for listed origins.
const (
	corsAllowMethods  = "GET, HEAD, PUT, POST, DELETE"
	corsExposeHeaders = "x-amzn-RequestId, x-amz-request-id, x-amz-id-2, X-Amzn-ErrorType, ETag, x-amz-version-id, X-Amzn-Invoked-Production-Variant, X-Amzn-SageMaker-Custom-Attributes, Content-Length, Content-Type"
	corsMaxAge        = "600"
)

// preflight answers a CORS preflight: the grant for a listed origin and a
// method berth serves, 403 otherwise.
func (g *Guard) preflight(w http.ResponseWriter, r *http.Request, origin string) {
	h := w.Header()
	h.Add("Vary", "Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
	method := r.Header.Get("Access-Control-Request-Method")
	if !g.origins[normalizeOrigin(origin)] {
		g.refuse(w, r, "AccessForbidden", "AccessDeniedException",
			"CORSResponse: berth grants no cross-origin access to "+strconv.Quote(origin)+"; to allow this origin, list it under cors.allowed_origins in the config")
		return
	}
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodDelete:
	default:
		g.refuse(w, r, "AccessForbidden", "AccessDeniedException",
			"CORSResponse: method "+strconv.Quote(method)+" is not allowed cross-origin; allowed: "+corsAllowMethods)
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Methods", corsAllowMethods)
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" && isHeaderList(req) {
		// The origin is trusted and every request is still authenticated:
		// the headers it asks for (Authorization, x-amz-*, metadata) are
		// granted as asked.
		h.Set("Access-Control-Allow-Headers", req)
	}
	h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
}

// isHeaderList reports whether s is a comma-separated list of header names.
func isHeaderList(s string) bool {
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '_' || c == ',' || c == ' ':
		default:
			return false
		}
	}
	return true
}

// refuse answers 403 in the shape of the protocol the request is for: S3's
// XML error with s3Code, or the JSON error with jsonCode.
func (g *Guard) refuse(w http.ResponseWriter, r *http.Request, s3Code, jsonCode, msg string) {
	id := newRequestID()
	w.Header().Set("x-amzn-RequestId", id)
	// Debug: a page can send these as fast as it likes; the client is
	// told why.
	g.logger.Debug("request refused by the browser guard", "request_id", id, "host", r.Host, "origin", r.Header.Get("Origin"), "method", r.Method, "path", r.URL.Path, "code", jsonCode)
	if !guardForS3(r) {
		WriteError(w, r.WithContext(WithRequestID(r.Context(), id)), g.logger, SageMakerCatalog, &Error{Status: http.StatusForbidden, Code: jsonCode, Message: msg})
		return
	}
	body, _ := xml.Marshal(struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string
		Message   string
		RequestID string `xml:"RequestId"`
	}{Code: s3Code, Message: msg, RequestID: id})
	body = append([]byte(xml.Header), body...)
	h := w.Header()
	h.Set("x-amz-request-id", id)
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusForbidden)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

// guardForS3 reports whether r is for the S3 API, as far as the guard can
// tell without the router: signed for s3, or unsigned with no X-Amz-Target
// and not a path of another API.
func guardForS3(r *http.Request) bool {
	switch credentialScopeService(r) {
	case scopeS3:
		return true
	case "":
	default:
		return false
	}
	if r.Header.Get("X-Amz-Target") != "" || strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Request-Headers")), "x-amz-target") {
		return false
	}
	p := r.URL.Path
	return !strings.HasPrefix(p, "/endpoints/") && p != "/ping" && p != "/metrics"
}
