package s3

import (
	"io"
	"net/http"
	"strings"
)

// withoutCORS undoes the CORS headers gofakes3 puts on every response
// (Access-Control-Allow-Origin: * among them): each Access-Control-*
// header is put back as it was when the request reached this handler —
// absent, or as awsapi's browser guard set it for an origin the config
// lists. gofakes3 answers OPTIONS itself too; preflights never get here,
// the guard answers them.
//
// Every response also tells browsers not to run what it carries as a page
// of berth's origin (Content-Security-Policy: sandbox, and nosniff): an
// HTML object opened from the store would otherwise be same-origin with
// the whole API, which the guard lets through.
func withoutCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var saved http.Header
		for k, v := range w.Header() {
			if isCORSHeader(k) {
				if saved == nil {
					saved = http.Header{}
				}
				saved[k] = append([]string(nil), v...)
			}
		}
		f := &corsFilter{ResponseWriter: w, saved: saved}
		next.ServeHTTP(f, r)
		// gofakes3 often writes nothing (a PUT's answer is its headers):
		// net/http sends the head after this returns.
		f.restore()
	})
}

func isCORSHeader(k string) bool {
	return len(k) > len("Access-Control-") && strings.EqualFold(k[:len("Access-Control-")], "Access-Control-")
}

// corsFilter restores the CORS headers before the response head goes out.
type corsFilter struct {
	http.ResponseWriter
	saved http.Header
	done  bool
}

func (f *corsFilter) restore() {
	if f.done {
		return
	}
	f.done = true
	h := f.ResponseWriter.Header()
	for k := range h {
		if isCORSHeader(k) {
			delete(h, k)
		}
	}
	for k, v := range f.saved {
		h[k] = v
	}
	h.Set("Content-Security-Policy", "sandbox")
	h.Set("X-Content-Type-Options", "nosniff")
}

func (f *corsFilter) WriteHeader(code int) {
	f.restore()
	f.ResponseWriter.WriteHeader(code)
}

func (f *corsFilter) Write(b []byte) (int, error) {
	f.restore()
	return f.ResponseWriter.Write(b)
}

// ReadFrom keeps the underlying writer's copy path (sendfile for objects
// on disk).
func (f *corsFilter) ReadFrom(r io.Reader) (int64, error) {
	f.restore()
	if rf, ok := f.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{f.ResponseWriter}, r)
}

func (f *corsFilter) Flush() {
	f.restore()
	http.NewResponseController(f.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (f *corsFilter) Unwrap() http.ResponseWriter { return f.ResponseWriter }
