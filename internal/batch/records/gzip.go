package records

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// Compression types, as SageMaker spells them.
const (
	CompressionNone = "None"
	CompressionGzip = "Gzip"
)

// Decompress wraps r for SageMaker's CompressionType: "None" (or empty)
// returns r as it is, "Gzip" decompresses it as a stream (concatenated gzip
// members are read one after the other, like gunzip does). Errors in the
// gzip data, including a stream that is empty or ends early, surface from
// Read as a *GzipError. Close releases the decoder; it does not close r.
func Decompress(r io.Reader, compression string) (io.ReadCloser, error) {
	switch compression {
	case "", CompressionNone:
		return io.NopCloser(r), nil
	case CompressionGzip:
		return &gzipReader{src: r}, nil
	default:
		return nil, fmt.Errorf("%w: CompressionType %q", ErrUnsupported, compression)
	}
}

// gzipReader opens the gzip stream on first Read, so that a corrupt header
// is reported on the read path like every other input error.
type gzipReader struct {
	src  io.Reader
	zr   *gzip.Reader
	out  int64 // decompressed bytes produced
	err  error // sticky
	init bool
}

func (g *gzipReader) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if !g.init {
		g.init = true
		zr, err := gzip.NewReader(bufio.NewReaderSize(g.src, readBufferSize))
		if err != nil {
			g.err = g.wrap(err)
			return 0, g.err
		}
		g.zr = zr
	}
	n, err := g.zr.Read(p)
	g.out += int64(n)
	if err != nil && err != io.EOF {
		g.err = g.wrap(err)
		return n, g.err
	}
	if err == io.EOF {
		g.err = io.EOF
	}
	return n, err
}

func (g *gzipReader) wrap(err error) error {
	if errors.Is(err, io.EOF) {
		// An empty stream, or one that ends inside a member.
		err = io.ErrUnexpectedEOF
	}
	return &GzipError{Offset: g.out, Err: err}
}

func (g *gzipReader) Close() error {
	if g.zr != nil {
		return g.zr.Close()
	}
	return nil
}
