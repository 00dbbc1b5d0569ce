package records

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Split types, as SageMaker spells them.
const (
	SplitNone     = "None"
	SplitLine     = "Line"
	SplitRecordIO = "RecordIO"
	SplitTFRecord = "TFRecord"
)

// DefaultMaxRecord bounds one record when NewReader is given no bound:
// 100 MiB, SageMaker's largest MaxPayloadInMB.
const DefaultMaxRecord = 100 << 20

// readBufferSize is the bufio buffer each reader keeps.
const readBufferSize = 64 << 10

// growChunk is the most a record buffer grows by before the bytes to fill it
// have arrived, so that a length field that lies costs no more memory than
// the data that actually follows it.
const growChunk = 1 << 20

// Reader yields the whole records of one object's stream, in order.
type Reader interface {
	// Next returns the next record (valid until the next call) or io.EOF.
	// After an error other than io.EOF, Next keeps returning that error.
	Next() ([]byte, error)
}

// NewReader splits r by SageMaker's SplitType: "None" (the whole stream is
// one record; also for an empty splitType), "Line", "RecordIO", "TFRecord".
// maxRecord bounds one record's size in bytes, framing excluded (a record
// past it is a *RecordError wrapping ErrRecordTooLarge); 0 or less means
// DefaultMaxRecord.
func NewReader(r io.Reader, splitType string, maxRecord int64) (Reader, error) {
	if maxRecord <= 0 {
		maxRecord = DefaultMaxRecord
	}
	b := base{br: bufio.NewReaderSize(r, readBufferSize), max: maxRecord}
	switch splitType {
	case "", SplitNone:
		return &noneReader{base: b}, nil
	case SplitLine:
		return &lineReader{base: b}, nil
	case SplitRecordIO:
		return &recordIOReader{base: b}, nil
	case SplitTFRecord:
		return &tfRecordReader{base: b}, nil
	default:
		return nil, fmt.Errorf("%w: SplitType %q", ErrUnsupported, splitType)
	}
}

// base holds what every reader shares: the buffered input, the reusable
// record buffer, the position and the sticky error.
type base struct {
	br    *bufio.Reader
	max   int64
	buf   []byte // reusable record buffer
	index int    // number of the next record
	off   int64  // bytes consumed so far
	err   error  // sticky
	hdr   [16]byte
}

// fail records err as the reader's final error, located at the record that
// starts at start.
func (b *base) fail(start int64, err error, detail string) error {
	b.err = &RecordError{Index: b.index, Offset: start, Detail: detail, Err: err}
	return b.err
}

// readFull reads exactly len(p) bytes. It reports io.EOF only when nothing
// was read and io.ErrUnexpectedEOF for a short read.
func (b *base) readFull(p []byte) error {
	n, err := io.ReadFull(b.br, p)
	b.off += int64(n)
	return err
}

// appendN appends n bytes of input to dst, growing dst no faster than the
// data arrives.
func (b *base) appendN(dst []byte, n int) ([]byte, error) {
	for n > 0 {
		c := min(n, growChunk)
		dst = slices.Grow(dst, c)
		if err := b.readFull(dst[len(dst) : len(dst)+c]); err != nil {
			return dst, err
		}
		dst = dst[:len(dst)+c]
		n -= c
	}
	return dst, nil
}

// truncated turns the end of input inside a record into ErrTruncated.
// It compares rather than using errors.Is so that a decoder's error that
// wraps io.ErrUnexpectedEOF (a *GzipError) keeps saying what it is.
func truncated(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return ErrTruncated
	}
	return err
}

// noneReader returns the whole stream as one record.
type noneReader struct {
	base
}

func (r *noneReader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	var err error
	r.buf, err = readAllBounded(r.br, r.buf[:0], r.max)
	r.off += int64(len(r.buf))
	switch {
	case errors.Is(err, ErrRecordTooLarge):
		return nil, r.fail(0, ErrRecordTooLarge, fmt.Sprintf("more than %d bytes", r.max))
	case err != nil:
		return nil, r.fail(0, err, "")
	}
	r.err = io.EOF
	if len(r.buf) == 0 {
		return nil, io.EOF
	}
	r.index++
	return r.buf, nil
}

// readAllBounded appends all of r to dst, failing with ErrRecordTooLarge
// once more than limit bytes have been read.
func readAllBounded(r io.Reader, dst []byte, limit int64) ([]byte, error) {
	for {
		if int64(len(dst)) > limit {
			return dst, ErrRecordTooLarge
		}
		if len(dst) == cap(dst) {
			dst = slices.Grow(dst, min(max(len(dst), 4096), growChunk))
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if err == io.EOF {
			if int64(len(dst)) > limit {
				return dst, ErrRecordTooLarge
			}
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// lineReader splits on '\n'.
type lineReader struct {
	base
}

func (r *lineReader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	start := r.off
	// Fast path: the whole line is in the bufio buffer; return it without
	// copying.
	line, err := r.br.ReadSlice('\n')
	r.off += int64(len(line))
	if err == nil {
		rec := trimEOL(line)
		if int64(len(rec)) > r.max {
			return nil, r.tooLarge(start)
		}
		r.index++
		return rec, nil
	}
	r.buf = append(r.buf[:0], line...)
	for err == bufio.ErrBufferFull {
		// The bound is checked on what has been read so far; the line's
		// terminator (at most 2 bytes) may still follow.
		if int64(len(r.buf)) > r.max+2 {
			return nil, r.tooLarge(start)
		}
		line, err = r.br.ReadSlice('\n')
		r.off += int64(len(line))
		r.buf = append(r.buf, line...)
	}
	switch {
	case err == nil:
		rec := trimEOL(r.buf)
		if int64(len(rec)) > r.max {
			return nil, r.tooLarge(start)
		}
		r.index++
		return rec, nil
	case err == io.EOF:
		r.err = io.EOF
		if len(r.buf) == 0 {
			return nil, io.EOF
		}
		// A last line without a newline is a record.
		if int64(len(r.buf)) > r.max {
			return nil, r.tooLarge(start)
		}
		r.index++
		return r.buf, nil
	default:
		return nil, r.fail(start, err, "")
	}
}

func (r *lineReader) tooLarge(start int64) error {
	return r.fail(start, ErrRecordTooLarge, fmt.Sprintf("line longer than %d bytes", r.max))
}

// trimEOL drops the final "\n" or "\r\n" of line.
func trimEOL(line []byte) []byte {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	return bytes.TrimSuffix(line, []byte{'\r'})
}

// RecordIO framing constants.
const (
	// RecordIOMagic starts every RecordIO part.
	RecordIOMagic = 0xCED7230A
	// recordIOMaxPart is the largest length a RecordIO length word holds.
	recordIOMaxPart = 1<<29 - 1
)

// RecordIO continuation flags.
const (
	cflagWhole  = 0
	cflagFirst  = 1
	cflagMiddle = 2
	cflagLast   = 3
)

var magicBytes = binary.LittleEndian.AppendUint32(nil, RecordIOMagic)

// recordIOReader reads MXNet RecordIO.
type recordIOReader struct {
	base
}

func (r *recordIOReader) Next() ([]byte, error) {
	if r.err != nil {
		return nil, r.err
	}
	start := r.off
	r.buf = r.buf[:0]
	hdr := r.hdr[:8]
	for part := 0; ; part++ {
		partOff := r.off
		if err := r.readFull(hdr); err != nil {
			if err == io.EOF && part == 0 {
				r.err = io.EOF
				return nil, io.EOF
			}
			return nil, r.fail(start, truncated(err), fmt.Sprintf("in the header of part %d at byte offset %d", part, partOff))
		}
		if m := binary.LittleEndian.Uint32(hdr[0:4]); m != RecordIOMagic {
			return nil, r.fail(start, ErrBadMagic, fmt.Sprintf("found 0x%08X at byte offset %d", m, partOff))
		}
		lrec := binary.LittleEndian.Uint32(hdr[4:8])
		cflag, n := lrec>>29, int(lrec&recordIOMaxPart)
		if (part == 0 && cflag != cflagWhole && cflag != cflagFirst) ||
			(part > 0 && cflag != cflagMiddle && cflag != cflagLast) {
			return nil, r.fail(start, ErrBadFlag, fmt.Sprintf("cflag %d in part %d at byte offset %d", cflag, part, partOff))
		}
		if int64(len(r.buf))+int64(n) > r.max {
			return nil, r.fail(start, ErrRecordTooLarge, fmt.Sprintf("more than %d bytes", r.max))
		}
		padded := (n + 3) &^ 3
		have := len(r.buf)
		var err error
		if r.buf, err = r.appendN(r.buf, padded); err != nil {
			return nil, r.fail(start, truncated(err), fmt.Sprintf("in the data of part %d at byte offset %d", part, partOff))
		}
		r.buf = r.buf[:have+n] // drop the padding
		if cflag == cflagWhole || cflag == cflagLast {
			break
		}
		// The writer split the record where the magic number occurred;
		// put it back.
		if int64(len(r.buf))+4 > r.max {
			return nil, r.fail(start, ErrRecordTooLarge, fmt.Sprintf("more than %d bytes", r.max))
		}
		r.buf = append(r.buf, magicBytes...)
	}
	r.index++
	return r.buf, nil
}

// AppendRecordIO appends rec to dst in MXNet's RecordIO framing, splitting
// it into parts where the magic number occurs at a 4-byte aligned position
// as MXNet's writer does, so that a reader can resynchronise on the magic.
// Parts longer than 2^29-1 bytes cannot be framed; callers bound records
// well below that.
func AppendRecordIO(dst, rec []byte) []byte {
	lowerAlign := len(rec) &^ 3
	dptr := 0
	for i := 0; i < lowerAlign; i += 4 {
		if binary.LittleEndian.Uint32(rec[i:]) == RecordIOMagic {
			flag := uint32(cflagMiddle)
			if dptr == 0 {
				flag = cflagFirst
			}
			dst = appendRecordIOPart(dst, flag, rec[dptr:i])
			dptr = i + 4
		}
	}
	flag := uint32(cflagWhole)
	if dptr != 0 {
		flag = cflagLast
	}
	return appendRecordIOPart(dst, flag, rec[dptr:])
}

func appendRecordIOPart(dst []byte, cflag uint32, data []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, RecordIOMagic)
	dst = binary.LittleEndian.AppendUint32(dst, cflag<<29|uint32(len(data))&recordIOMaxPart)
	dst = append(dst, data...)
	for pad := (4 - len(data)%4) % 4; pad > 0; pad-- {
		dst = append(dst, 0)
	}
	return dst
}
