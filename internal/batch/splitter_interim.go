package batch

// This file is interim: it holds a minimal splitter and batcher (SplitType
// None and Line) behind the interface that internal/batch/records will
// provide with every split type and compression. It is deleted when that
// package lands; the runner only uses Reader, newReader and newBatcher.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Reader yields the whole records of one object's stream, in order.
type Reader interface {
	// Next returns the next record (valid until the next call) or io.EOF.
	Next() ([]byte, error)
}

// RecordTooLargeError reports a record over the payload limit.
type RecordTooLargeError struct {
	Index int   // 0-based record index within the object
	Limit int64 // bytes
}

func (e *RecordTooLargeError) Error() string {
	return fmt.Sprintf("record %d is larger than MaxPayloadInMB (%d bytes)", e.Index+1, e.Limit)
}

// newReader splits r by SplitType "None" (the whole stream is one record)
// or "Line"; maxRecord bounds one record.
func newReader(r io.Reader, splitType string, maxRecord int64) (Reader, error) {
	switch splitType {
	case "", "None":
		return &wholeReader{r: r, max: maxRecord}, nil
	case "Line":
		return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: maxRecord}, nil
	}
	return nil, fmt.Errorf("split type %q is not supported", splitType)
}

type wholeReader struct {
	r    io.Reader
	max  int64
	done bool
	buf  bytes.Buffer
}

func (w *wholeReader) Next() ([]byte, error) {
	if w.done {
		return nil, io.EOF
	}
	w.done = true
	w.buf.Reset()
	n, err := w.buf.ReadFrom(io.LimitReader(w.r, w.max+1))
	if err != nil {
		return nil, err
	}
	if n > w.max {
		return nil, &RecordTooLargeError{Index: 0, Limit: w.max}
	}
	return w.buf.Bytes(), nil
}

// lineReader returns each line without its newline.
type lineReader struct {
	r   *bufio.Reader
	max int64
	n   int
	buf []byte
}

func (l *lineReader) Next() ([]byte, error) {
	l.buf = l.buf[:0]
	for {
		chunk, err := l.r.ReadSlice('\n')
		l.buf = append(l.buf, chunk...)
		content := len(l.buf)
		if err == nil {
			content-- // the newline
		}
		if int64(content) > l.max {
			return nil, &RecordTooLargeError{Index: l.n, Limit: l.max}
		}
		switch {
		case err == nil:
			l.n++
			return l.buf[:len(l.buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			if len(l.buf) == 0 {
				return nil, io.EOF
			}
			l.n++
			return l.buf, nil
		default:
			return nil, err
		}
	}
}

// Batch is one mini-batch: its body and the indexes of its records.
type Batch struct {
	Body         []byte
	First, Count int
}

// batcher packs records into mini-batches.
type batcher struct {
	rd        Reader
	multi     bool
	line      bool
	max       int64
	next      int    // index of the next record read
	held      []byte // a record read but not yet batched (MultiRecord)
	hasHeld   bool
	exhausted bool
}

// newBatcher packs records: "SingleRecord" one per batch, "MultiRecord"
// as many whole records as fit in maxPayload. Line records get their
// newline back.
func newBatcher(rd Reader, strategy, splitType string, maxPayload int64) *batcher {
	return &batcher{rd: rd, multi: strategy == "MultiRecord", line: splitType == "Line", max: maxPayload}
}

func (b *batcher) encoded(rec []byte) int64 {
	if b.line {
		return int64(len(rec)) + 1
	}
	return int64(len(rec))
}

func (b *batcher) appendRec(dst, rec []byte) []byte {
	dst = append(dst, rec...)
	if b.line {
		dst = append(dst, '\n')
	}
	return dst
}

// Next returns the next mini-batch (a fresh buffer the caller keeps), or
// io.EOF.
func (b *batcher) Next() (Batch, error) {
	var out Batch
	if b.hasHeld {
		out.First = b.next - 1
		out.Body = b.appendRec(nil, b.held)
		out.Count = 1
		b.hasHeld = false
	} else {
		out.First = b.next
	}
	for {
		if !b.multi && out.Count == 1 {
			return out, nil
		}
		if b.exhausted {
			break
		}
		rec, err := b.rd.Next()
		if err == io.EOF {
			b.exhausted = true
			break
		}
		if err != nil {
			return Batch{}, err
		}
		b.next++
		if b.encoded(rec) > b.max {
			return Batch{}, &RecordTooLargeError{Index: b.next - 1, Limit: b.max}
		}
		if out.Count > 0 && int64(len(out.Body))+b.encoded(rec) > b.max {
			b.held = append(b.held[:0], rec...)
			b.hasHeld = true
			return out, nil
		}
		out.Body = b.appendRec(out.Body, rec)
		out.Count++
	}
	if out.Count == 0 {
		return Batch{}, io.EOF
	}
	return out, nil
}
