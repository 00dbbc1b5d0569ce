// Package deadline keeps slow and stalled clients from holding net/http
// connections. net/http's server offers only whole-request ReadTimeout and
// WriteTimeout, which would cut large uploads, downloads and response
// streams however live they are, so berth leaves them unset and sets
// deadlines per request through http.ResponseController instead:
//
//   - Fixed (the default): a request body must arrive within Body of the
//     handler's start, and a response must be written within Write of its
//     first byte. For requests and answers of bounded size.
//   - Progress: a transfer must keep moving. Every Chunk bytes read or
//     written renews the deadline to Progress from then, so a large but
//     live transfer is never cut, while one that stalls, or trickles
//     slower than Chunk per Progress, is.
//
// Handler puts every request under Fixed deadlines; a service handler
// wrapped in Stream switches its requests' reads, writes or both to
// Progress. Read deadlines are set only for requests with a body, and
// lifted when it has been read to its end: from then on (and from the
// start for a request without a body) net/http reads the connection in
// the background to notice a client going away, and a read deadline
// expiring under that read would cancel the request's context while the
// handler still works.
package deadline

import (
	"context"
	"io"
	"net/http"
	"time"
)

// Options are the deadlines. Zero fields take their defaults.
type Options struct {
	// Body bounds reading a request body under Fixed. Default 60s.
	Body time.Duration
	// Write bounds writing a response under Fixed. Default 60s.
	Write time.Duration
	// Progress is the deadline renewed, under Progress, whenever Chunk
	// more bytes have moved. Default 30s.
	Progress time.Duration
	// Chunk is the progress that renews a Progress deadline. Default
	// 32 KiB.
	Chunk int
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Mode is how one direction of a request is bounded.
type Mode int8

const (
	// Fixed: one deadline for the whole body or response.
	Fixed Mode = iota
	// Progress: a deadline renewed as bytes move.
	Progress
)

// Handler returns next with every request under Fixed deadlines (see the
// package doc), unless a Stream handler on its way switches them.
func Handler(next http.Handler, opts Options) http.Handler {
	if opts.Body <= 0 {
		opts.Body = 60 * time.Second
	}
	if opts.Write <= 0 {
		opts.Write = 60 * time.Second
	}
	if opts.Progress <= 0 {
		opts.Progress = 30 * time.Second
	}
	if opts.Chunk <= 0 {
		opts.Chunk = 32 << 10
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := opts.Now()
		st := &state{opts: &opts, rc: http.NewResponseController(w)}
		// The write deadline also covers what net/http writes before the
		// handler does (100 Continue) and replaces one left by the
		// connection's previous request.
		st.setWrite(now.Add(opts.Write))
		// The body is replaced on a copy of r: net/http looks at the
		// original's to decide what to do with a body left unread.
		r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			st.body = &body{st: st, r: r.Body}
			st.setRead(now.Add(opts.Body))
			r.Body = st.body
		}
		sw := &writer{st: st, w: w}
		defer func() {
			if !st.wrote {
				// net/http writes the response when the handler returns.
				st.setWrite(opts.Now().Add(opts.Write))
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// Stream returns h with its requests' reads and/or writes under Progress
// deadlines instead of Fixed ones. Outside Handler it does nothing.
func Stream(h http.Handler, reads, writes bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if st, ok := r.Context().Value(stateKey{}).(*state); ok {
			if reads && st.readMode != Progress {
				st.readMode = Progress
				if st.body != nil && !st.body.done {
					st.setRead(st.opts.Now().Add(st.opts.Progress))
				}
			}
			if writes {
				st.writeMode = Progress
			}
		}
		h.ServeHTTP(w, r)
	})
}

type stateKey struct{}

// state is one request's deadlines. A handler's body reads and response
// writes happen on its own goroutine, one at a time.
type state struct {
	opts      *Options
	rc        *http.ResponseController
	body      *body
	readMode  Mode
	writeMode Mode
	rdl, wdl  time.Time // deadlines set
	moved     int       // bytes read since the read deadline was renewed
	wrote     bool      // the response has begun
}

func (st *state) setRead(t time.Time) {
	st.rdl = t
	_ = st.rc.SetReadDeadline(t)
}

func (st *state) setWrite(t time.Time) {
	st.wdl = t
	_ = st.rc.SetWriteDeadline(t)
}

// renewWrite makes sure a write of up to Chunk bytes starting now has
// most of Progress to finish; it leaves a deadline that is close enough
// alone, so small writes in a row do not each reset the timer.
func (st *state) renewWrite() {
	now := st.opts.Now()
	t := now.Add(st.opts.Progress)
	if t.Sub(st.wdl) > st.opts.Progress/16 {
		st.setWrite(t)
	}
}

// beginWrite is called before each write of the response.
func (st *state) beginWrite() {
	switch {
	case st.writeMode == Progress:
		st.renewWrite()
	case !st.wrote:
		st.setWrite(st.opts.Now().Add(st.opts.Write))
	}
	st.wrote = true
}

// body is the request body with its read deadline.
type body struct {
	st   *state
	r    io.ReadCloser
	done bool
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	st := b.st
	if err == io.EOF && !b.done {
		b.done = true
		st.setRead(time.Time{})
	} else if st.readMode == Progress && n > 0 {
		if st.moved += n; st.moved >= st.opts.Chunk {
			st.moved = 0
			st.setRead(st.opts.Now().Add(st.opts.Progress))
		}
	}
	return n, err
}

func (b *body) Close() error { return b.r.Close() }

// writer is the response writer with its write deadline.
type writer struct {
	st *state
	w  http.ResponseWriter
}

func (w *writer) Header() http.Header { return w.w.Header() }

func (w *writer) WriteHeader(status int) {
	w.st.beginWrite()
	w.w.WriteHeader(status)
}

func (w *writer) Write(p []byte) (int, error) {
	st := w.st
	if st.writeMode != Progress {
		st.beginWrite()
		return w.w.Write(p)
	}
	// Progress: each piece of at most Chunk bytes gets its renewed
	// deadline, so a large write to a slow but live client is not cut.
	done := 0
	for {
		piece := p[done:]
		if len(piece) > st.opts.Chunk {
			piece = piece[:st.opts.Chunk]
		}
		st.beginWrite()
		n, err := w.w.Write(piece)
		done += n
		if err != nil || done == len(p) {
			return done, err
		}
	}
}

// FlushError flushes the response under the write deadline.
func (w *writer) FlushError() error {
	w.st.beginWrite()
	return http.NewResponseController(w.w).Flush()
}

// Flush is FlushError for callers that use http.Flusher.
func (w *writer) Flush() { _ = w.FlushError() }

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *writer) Unwrap() http.ResponseWriter { return w.w }
