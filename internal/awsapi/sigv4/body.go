package sigv4

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
)

// BodyChecker is a request body that verifies what it reads. Failed
// returns the verification failure, nil while none has happened; Read
// returns that failure as its error too, so whoever reads the body stops.
type BodyChecker interface {
	io.Reader
	Failed() *Error
}

// IsHexSHA256 reports whether v is 64 lower-case hexadecimal digits.
func IsHexSHA256(v []byte) bool {
	if len(v) != 64 {
		return false
	}
	for _, c := range v {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// CheckPayload compares body, held whole in memory, with the hex SHA-256
// claimed in x-amz-content-sha256.
func CheckPayload(body, claimed []byte) *Error {
	sum := sha256.Sum256(body)
	var want [32]byte
	if !IsHexSHA256(claimed) {
		return errPayload
	}
	hex.Decode(want[:], claimed)
	if sum != want {
		return errPayload
	}
	return nil
}

// AppendPayloadHash appends the hex SHA-256 of body to b.
func AppendPayloadHash(b, body []byte) []byte {
	sum := sha256.Sum256(body)
	return hex.AppendEncode(b, sum[:])
}

// NewHashReader returns a body that fails with PayloadMismatch unless r's
// bytes hash to claimed (64 hex digits). size is the body length, -1 when
// unknown. The check happens before the last bytes are returned, so a
// reader that stops at size bytes never sees an unverified end.
func NewHashReader(r io.Reader, claimed []byte, size int64) BodyChecker {
	h := &hashReader{r: r, h: sha256.New(), left: size}
	hex.Decode(h.want[:], claimed)
	return h
}

type hashReader struct {
	r    io.Reader
	h    hash.Hash
	want [32]byte
	left int64 // -1: unknown
	err  *Error
	done bool
}

func (h *hashReader) Failed() *Error { return h.err }

func (h *hashReader) Read(p []byte) (int, error) {
	if h.err != nil {
		return 0, h.err
	}
	if h.done {
		return 0, io.EOF
	}
	if h.left >= 0 && int64(len(p)) > h.left {
		p = p[:h.left]
	}
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	if h.left >= 0 {
		h.left -= int64(n)
		if h.left == 0 && err == nil {
			err = io.EOF
		}
	}
	if err == io.EOF {
		h.done = true
		if h.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		var sum [32]byte
		if !bytes.Equal(h.h.Sum(sum[:0]), h.want[:]) {
			h.err = errPayload
			return 0, h.err
		}
		if n > 0 {
			return n, nil // EOF on the next call
		}
	}
	return n, err
}

// MaxChunkBytes bounds one chunk of an aws-chunked body: a chunk is held
// whole until its signature is checked. The SDKs send 64 KiB chunks.
const MaxChunkBytes = 16 << 20

// NewChunkedReader returns the decoded payload of an aws-chunked body
// signed with STREAMING-AWS4-HMAC-SHA256-PAYLOAD, checking each chunk's
// signature (chained from the request's seed signature in sg). decoded is
// X-Amz-Decoded-Content-Length. A chunk's bytes are returned only after
// its signature matched, and the final empty chunk is checked before the
// last data bytes are returned.
func NewChunkedReader(r io.Reader, sg Signed, decoded int64) BodyChecker {
	c := &chunkReader{r: bufio.NewReaderSize(r, 64<<10), key: sg.Key, prev: sg.Signature, left: decoded}
	c.prefix = append(c.prefix, "AWS4-HMAC-SHA256-PAYLOAD\n"...)
	c.prefix = append(c.prefix, sg.AmzDate...)
	c.prefix = append(c.prefix, '\n')
	c.prefix = append(c.prefix, sg.Scope...)
	c.prefix = append(c.prefix, '\n')
	return c
}

type chunkReader struct {
	r      *bufio.Reader
	key    [32]byte
	prev   [32]byte
	prefix []byte
	left   int64 // declared payload bytes not yet decoded
	buf    []byte
	off    int
	done   bool
	err    *Error
	s      scratch
}

func (c *chunkReader) Failed() *Error { return c.err }

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	for c.off == len(c.buf) {
		if c.done {
			return 0, io.EOF
		}
		if err := c.next(); err != nil {
			c.err = err
			return 0, err
		}
	}
	n := copy(p, c.buf[c.off:])
	c.off += n
	return n, nil
}

// next reads and checks one chunk; after the chunk that completes the
// declared length it reads and checks the final empty chunk too.
func (c *chunkReader) next() *Error {
	size, err := c.readChunk()
	if err != nil {
		return err
	}
	if size == 0 {
		if c.left != 0 {
			return fail(BadChunk, "aws-chunked body is shorter than X-Amz-Decoded-Content-Length")
		}
		c.done = true
		return nil
	}
	if c.left == 0 {
		data := c.buf
		c.buf = nil
		if size, err := c.readChunk(); err != nil {
			return err
		} else if size != 0 {
			return fail(BadChunk, "aws-chunked body is longer than X-Amz-Decoded-Content-Length")
		}
		c.buf, c.done = data, true
	}
	return nil
}

// readChunk reads one chunk into c.buf and checks its signature.
func (c *chunkReader) readChunk() (int64, *Error) {
	line, err := c.r.ReadSlice('\n')
	if err != nil || len(line) < 2 || line[len(line)-2] != '\r' {
		return 0, fail(BadChunk, "aws-chunked body ends early or has a malformed chunk header")
	}
	var sig [32]byte
	size, perr := ParseChunkHeader(line[:len(line)-2], &sig)
	if perr != nil {
		return 0, perr.(*Error)
	}
	if size > c.left {
		return 0, fail(BadChunk, "aws-chunked body is longer than X-Amz-Decoded-Content-Length")
	}
	if size > MaxChunkBytes {
		return 0, fail(BadChunk, "aws-chunked chunk is larger than 16 MiB")
	}
	if int64(cap(c.buf)) < size {
		c.buf = make([]byte, size)
	}
	c.buf, c.off = c.buf[:size], 0
	if _, err := io.ReadFull(c.r, c.buf); err != nil {
		return 0, fail(BadChunk, "aws-chunked body ends early")
	}
	var crlf [2]byte
	if _, err := io.ReadFull(c.r, crlf[:]); err != nil || crlf != [2]byte{'\r', '\n'} {
		return 0, fail(BadChunk, "aws-chunked chunk is not followed by CRLF")
	}
	sum := sha256.Sum256(c.buf)
	b := append(c.s.buf[:0], c.prefix...)
	b = hex.AppendEncode(b, c.prev[:])
	b = append(b, '\n')
	b = append(b, EmptySHA256...)
	b = append(b, '\n')
	b = hex.AppendEncode(b, sum[:])
	c.s.buf = b
	if c.s.hmac(&c.key, b) != sig {
		return 0, errBadChunk
	}
	c.prev = sig
	c.left -= size
	return size, nil
}
