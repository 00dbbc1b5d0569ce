// Package s3 speaks the S3 REST protocol for berth's embedded object
// store, so that the AWS CLI, boto3 and the AWS SDKs can upload and fetch
// objects. The protocol itself comes from github.com/rclone/gofakes3; this
// package adapts it to an objstore.Store (see backend) and optionally
// spools multipart uploads to disk (see multipart).
package s3

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rclone/gofakes3"

	"github.com/berth-io/berth/internal/objstore"
)

// Option configures NewHandler.
type Option func(*options)

type options struct {
	multipartDir string
	hostDomains  []string
	postLookup   SecretLookup
}

// WithMultipartDir spools the parts of multipart uploads to files under
// dir (one sub-directory per upload) instead of holding them in memory.
// The handler owns dir: anything in it when the handler is made is left
// over from an earlier process and removed. dir should be on the same
// file system as the store for the final copy to be cheap.
func WithMultipartDir(dir string) Option {
	return func(o *options) { o.multipartDir = dir }
}

// WithVirtualHostDomains accepts virtual-hosted–style requests: a request
// for Host "<bucket>.<domain>[:port]", with domain one of domains (for
// example "localhost"), is served as the path-style "/<bucket>/<path>".
// Other hosts are path-style.
func WithVirtualHostDomains(domains ...string) Option {
	return func(o *options) { o.hostDomains = append(o.hostDomains, domains...) }
}

// NewHandler returns the S3 protocol handler over store. It expects the
// full request path: "/" lists buckets, "/<bucket>" and
// "/<bucket>/<key>" address a bucket and an object; mount it at the root
// of a server or behind a router that does not strip a prefix.
//
// The handler does not authenticate: requests are expected to have been
// checked (SigV4) in front of it. It does not check clock skew either.
// The exception is browser uploads (POST Object, see IsBrowserUpload),
// which carry no request signature: their signed policy is checked here
// (see WithPostPolicy). It sends no CORS headers of its own.
func NewHandler(store objstore.Store, logger *slog.Logger, opts ...Option) http.Handler {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	b := &backend{store: store, logger: logger}
	if o.multipartDir != "" {
		dir, err := filepath.Abs(o.multipartDir)
		if err == nil {
			err = resetDir(dir)
		}
		if err != nil {
			logger.Error("multipart uploads will be held in memory: cannot use the spool directory", "dir", o.multipartDir, "err", err)
		} else {
			b.parts = newPartSpool(dir)
		}
	}

	fake := gofakes3.New(b,
		gofakes3.WithLogger(gofakesLogger{logger}),
		gofakes3.WithTimeSkewLimit(0),
		gofakes3.WithoutVersioning(),
	)
	post := &postGuard{next: emptyUploadLists(fake.Server()), lookup: o.postLookup, now: time.Now}
	if b.parts != nil {
		post.dir = b.parts.dir // spooled browser uploads go with the parts
	}
	h := withoutCORS(post)
	if len(o.hostDomains) > 0 {
		h = virtualHost(o.hostDomains, h)
	}
	return h
}

// resetDir makes dir an empty directory.
func resetDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("remove stale upload: %w", err)
		}
	}
	return nil
}

// virtualHost rewrites virtual-hosted–style requests to path style.
func virtualHost(domains []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.ToLower(host)
		for _, d := range domains {
			bucket, ok := strings.CutSuffix(host, "."+strings.ToLower(d))
			if !ok || bucket == "" {
				continue
			}
			r2 := r.Clone(r.Context())
			r2.URL.Path = "/" + bucket + r.URL.Path
			if r.URL.RawPath != "" {
				r2.URL.RawPath = "/" + bucket + r.URL.RawPath
			}
			next.ServeHTTP(w, r2)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// gofakesLogger sends gofakes3's log lines to slog. Its INFO lines trace
// every request, so they go out at debug level. Its errors are mostly
// what a client caused (a body cut short), so their message is constant
// and the text an attribute: a rate-limited logger then counts them as
// one kind.
type gofakesLogger struct{ l *slog.Logger }

func (g gofakesLogger) Print(level gofakes3.LogLevel, v ...any) {
	msg := strings.TrimSpace(fmt.Sprintln(v...))
	switch level {
	case gofakes3.LogErr:
		g.l.Error("s3 request failed", "detail", msg)
	case gofakes3.LogWarn:
		g.l.Warn("s3 request warning", "detail", msg)
	default:
		g.l.Log(context.Background(), slog.LevelDebug, msg)
	}
}
