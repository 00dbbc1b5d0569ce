package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

type bodyMode uint8

const (
	bodyNone       bodyMode = iota // no body (HEAD, 204, 304)
	bodyLength                     // Content-Length bytes
	bodyChunked                    // chunked transfer coding
	bodyUntilClose                 // until the server closes (no length)
)

type chunkState uint8

const (
	chunkSize    chunkState = iota // expecting a chunk-size line
	chunkData                      // inside chunk data
	chunkDataEnd                   // expecting the CRLF after chunk data
	chunkTrailer                   // reading trailer lines
)

// maxChunkLine bounds a chunk-size line; maxTrailer the trailer section.
const (
	maxChunkLine = 4096
	maxTrailer   = 16 << 10
)

// Response is an upstream response whose head has been read. Its byte
// slices point into buffers owned by the Response and are valid until
// Close. A Response is not safe for concurrent use.
type Response struct {
	// StatusCode is the response status.
	StatusCode int
	// ContentLength is the body length, -1 when chunked or read until close.
	ContentLength int64
	// Chunked reports a chunked body.
	Chunked bool
	// ConnClose reports that the connection will not be reused.
	ConnClose bool
	// ContentType is the Content-Type value, nil if absent.
	ContentType []byte
	// CustomAttributes is the X-Amzn-SageMaker-Custom-Attributes value.
	CustomAttributes []byte

	raw       []byte // the header block
	mode      bodyMode
	remaining int64 // body bytes left (bodyLength) or in the chunk
	chunk     chunkState
	trailer   int
	done      bool
	err       error // sticky body error

	c    *Client
	pc   *pconn
	stop func() bool
	// ctx is the context of Do, kept to report its error when a body read
	// is interrupted by it.
	ctx context.Context
}

var respPool = sync.Pool{New: func() any { return new(Response) }}

func (r *Response) setHead(h *respHead, head bool) {
	raw := r.raw
	*r = Response{raw: raw}
	r.StatusCode = h.status
	r.ConnClose = h.close
	r.ContentType = h.contentType
	r.CustomAttributes = h.customAttrs
	r.ContentLength = -1
	switch {
	case head || h.status == 204 || h.status == 304:
		r.mode = bodyNone
		r.ContentLength = 0
	case h.chunked:
		r.mode = bodyChunked
		r.Chunked = true
	case h.contentLength >= 0:
		r.mode = bodyLength
		r.ContentLength = h.contentLength
		r.remaining = h.contentLength
	default:
		r.mode = bodyUntilClose
		r.ConnClose = true
	}
}

// VisitHeaders calls fn for every header field of the response, in order.
func (r *Response) VisitHeaders(fn func(name, value []byte)) { visitFields(r.raw, fn) }

// Header returns the first value of the named header field (any case),
// nil if absent.
func (r *Response) Header(name string) []byte { return lookupField(r.raw, name) }

// Read reads the body. It returns io.EOF after the last byte; at that point
// the connection has already gone back to the pool.
func (r *Response) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.done {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	n, err := r.read(p)
	if err == io.EOF {
		r.finish()
		return n, io.EOF
	}
	if err != nil {
		r.fail(fmt.Errorf("read response body: %w", ctxErr(r.ctx, err)))
		return n, r.err
	}
	return n, nil
}

func (r *Response) read(p []byte) (int, error) {
	pc := r.pc
	switch r.mode {
	case bodyLength:
		if r.remaining == 0 {
			return 0, io.EOF
		}
		if int64(len(p)) > r.remaining {
			p = p[:r.remaining]
		}
		n, err := pc.readSome(p)
		r.remaining -= int64(n)
		if r.remaining == 0 {
			return n, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	case bodyUntilClose:
		return pc.readSome(p)
	case bodyChunked:
		return r.readChunked(p)
	}
	return 0, io.EOF
}

func (r *Response) readChunked(p []byte) (int, error) {
	pc := r.pc
	for {
		switch r.chunk {
		case chunkSize:
			line, err := pc.readLine(maxChunkLine)
			if err != nil {
				return 0, err
			}
			size, err := parseChunkSize(line)
			if err != nil {
				return 0, err
			}
			if size == 0 {
				r.chunk = chunkTrailer
				continue
			}
			r.remaining = size
			r.chunk = chunkData
		case chunkData:
			if int64(len(p)) > r.remaining {
				p = p[:r.remaining]
			}
			n, err := pc.readSome(p)
			r.remaining -= int64(n)
			if r.remaining == 0 {
				r.chunk = chunkDataEnd
			}
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		case chunkDataEnd:
			line, err := pc.readLine(maxChunkLine)
			if err != nil {
				return 0, err
			}
			if len(line) != 0 {
				return 0, errors.New("malformed chunked encoding: data longer than chunk size")
			}
			r.chunk = chunkSize
		case chunkTrailer:
			line, err := pc.readLine(maxChunkLine)
			if err != nil {
				return 0, err
			}
			if len(line) == 0 {
				return 0, io.EOF
			}
			r.trailer += len(line)
			if r.trailer > maxTrailer {
				return 0, errors.New("chunked trailer too large")
			}
			if _, _, err := parseField(line); err != nil {
				return 0, fmt.Errorf("chunked trailer: %w", err)
			}
		}
	}
}

// parseChunkSize parses "hex-size" or "hex-size;extensions" strictly.
func parseChunkSize(line []byte) (int64, error) {
	var n int64
	i := 0
	for ; i < len(line); i++ {
		c := line[i]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			goto end
		}
		if i >= 15 {
			return 0, errors.New("malformed chunked encoding: chunk size too large")
		}
		n = n<<4 | int64(d)
	}
end:
	if i == 0 {
		return 0, fmt.Errorf("malformed chunked encoding: chunk size line %q", clip(line))
	}
	if i < len(line) && (line[i] != ';' || !validFieldValue(line[i:])) {
		return 0, fmt.Errorf("malformed chunked encoding: chunk size line %q", clip(line))
	}
	return n, nil
}

// ReadBody appends the rest of the body to dst and returns it. A body
// longer than limit bytes is not read: ReadBody fails with
// ErrBodyTooLarge and the connection is closed. When the length is known
// dst is grown once.
func (r *Response) ReadBody(dst []byte, limit int64) ([]byte, error) {
	if r.err != nil {
		return dst, r.err
	}
	if r.mode == bodyLength && !r.done {
		if int64(len(dst))+r.remaining > limit {
			r.fail(fmt.Errorf("%w: content-length %d over %d bytes", ErrBodyTooLarge, r.ContentLength, limit))
			return dst, r.err
		}
		dst = grow(dst, int(r.remaining))
	}
	for {
		if len(dst) == cap(dst) {
			if int64(len(dst)) >= limit {
				// One more byte means too large.
				var one [1]byte
				n, err := r.Read(one[:])
				if n > 0 {
					r.fail(fmt.Errorf("%w: over %d bytes", ErrBodyTooLarge, limit))
					return dst, r.err
				}
				if err == io.EOF {
					return dst, nil
				}
				return dst, err
			}
			dst = grow(dst, min(max(cap(dst), 4096), int(limit)-len(dst)))
		}
		room := dst[len(dst):cap(dst)]
		if int64(len(dst)+len(room)) > limit {
			room = room[:limit-int64(len(dst))]
		}
		n, err := r.Read(room)
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

// SetDeadline replaces the deadline for reading the rest of the body, for
// instance to give a response stream longer than its head had. A zero t
// means none.
func (r *Response) SetDeadline(t time.Time) {
	if r.pc == nil {
		return
	}
	r.pc.setDeadline(t)
	if r.c.aborted.Load() {
		r.pc.interrupt()
	}
}

// finish releases the connection after the whole body was read: back to
// the pool if it can carry another request, closed otherwise.
func (r *Response) finish() {
	r.done = true
	pc := r.pc
	if pc == nil {
		return
	}
	r.pc = nil
	reusable := !r.ConnClose && r.mode != bodyUntilClose && pc.r == pc.w && !r.c.closed.Load()
	if r.stop != nil && !r.stop() {
		reusable = false // the context fired: the deadline may be in the past
	}
	r.stop = nil
	if reusable {
		pc.pool.put(pc)
	} else {
		pc.close()
	}
}

// fail records a body error and closes the connection.
func (r *Response) fail(err error) {
	r.err = err
	if r.stop != nil {
		r.stop()
		r.stop = nil
	}
	if r.pc != nil {
		r.pc.close()
		r.pc = nil
	}
}

// Close releases the response. A connection whose body was not read to
// the end is closed rather than pooled, unless the rest of the body is
// already buffered. The Response must not be used after Close.
func (r *Response) Close() error {
	if !r.done && r.err == nil && r.pc != nil {
		if r.mode == bodyLength && r.remaining <= int64(r.pc.w-r.pc.r) {
			r.pc.r += int(r.remaining)
			r.remaining = 0
			r.finish()
		} else {
			r.fail(errors.New("response closed"))
		}
	}
	raw := r.raw[:0]
	if cap(raw) > 64<<10 {
		raw = nil
	}
	*r = Response{raw: raw}
	respPool.Put(r)
	return nil
}

// readSome reads into p from the buffer, or directly from the connection
// when the buffer is empty and p is at least as large as it.
func (pc *pconn) readSome(p []byte) (int, error) {
	if pc.r < pc.w {
		n := copy(p, pc.buf[pc.r:pc.w])
		pc.r += n
		return n, nil
	}
	if len(p) >= len(pc.buf) {
		n, err := pc.sock.Read(p)
		if n > 0 {
			return n, nil
		}
		if err == nil {
			err = io.ErrNoProgress
		}
		return 0, err
	}
	n, err := pc.fill(len(pc.buf))
	if n == 0 {
		return 0, err
	}
	n = copy(p, pc.buf[pc.r:pc.w])
	pc.r += n
	return n, nil
}

// readLine returns the next CRLF-terminated line without its CRLF. The
// line is valid until the next read.
func (pc *pconn) readLine(limit int) ([]byte, error) {
	scan := 0
	for {
		b := pc.buf[pc.r:pc.w]
		for i := scan; i < len(b); i++ {
			if b[i] == '\n' {
				if i == 0 || b[i-1] != '\r' {
					return nil, errBareLF
				}
				pc.r += i + 1
				return b[:i-1], nil
			}
		}
		scan = len(b)
		if len(b) >= limit {
			return nil, errors.New("line too long")
		}
		if pc.r > 0 && pc.w == len(pc.buf) {
			pc.w = copy(pc.buf, b)
			pc.r = 0
		}
		n, err := pc.fill(max(limit, len(pc.buf)))
		if n == 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
}
