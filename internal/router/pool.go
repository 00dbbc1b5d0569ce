package router

import (
	"bytes"
	"sync"
)

// maxPooledBuffer is the largest buffer returned to the pool; bigger ones
// (a rare large body) are left to the garbage collector so the pool does
// not pin memory.
const maxPooledBuffer = 8 << 20

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// getBuffer returns an empty pooled buffer.
func getBuffer() *bytes.Buffer { return bufferPool.Get().(*bytes.Buffer) }

// putBuffer returns buf (which may be nil) to the pool.
func putBuffer(buf *bytes.Buffer) {
	if buf == nil || buf.Cap() > maxPooledBuffer {
		return
	}
	buf.Reset()
	bufferPool.Put(buf)
}

// CopyBufferSize is the size of the buffers that relay bodies.
const CopyBufferSize = 32 << 10

var copyPool = sync.Pool{New: func() any { b := make([]byte, CopyBufferSize); return &b }}

// getCopyBuf returns a pooled relay buffer of CopyBufferSize bytes.
func getCopyBuf() *[]byte { return copyPool.Get().(*[]byte) }

func putCopyBuf(b *[]byte) { copyPool.Put(b) }

// GetBuffer and PutBuffer lend pooled buffers to the runtime API, which
// relays bodies with the same pools as the router.
func GetBuffer() *bytes.Buffer { return getBuffer() }

// PutBuffer returns a buffer from GetBuffer.
func PutBuffer(buf *bytes.Buffer) { putBuffer(buf) }

// GetCopyBuf lends a relay buffer of CopyBufferSize bytes.
func GetCopyBuf() *[]byte { return getCopyBuf() }

// PutCopyBuf returns a buffer from GetCopyBuf.
func PutCopyBuf(b *[]byte) { putCopyBuf(b) }
