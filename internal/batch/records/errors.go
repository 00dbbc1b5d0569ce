package records

import (
	"errors"
	"fmt"
)

// Sentinel errors wrapped by *RecordError and *GzipError. Each says what was
// wrong with the input; the wrapping error says where.
var (
	// ErrTruncated reports a stream that ends inside a record's framing or
	// data.
	ErrTruncated = errors.New("truncated stream")
	// ErrBadMagic reports a RecordIO part that does not start with the magic
	// number 0xCED7230A.
	ErrBadMagic = errors.New("bad RecordIO magic number")
	// ErrBadFlag reports a RecordIO continuation flag that is out of range or
	// out of sequence (a continuation part without a first part, or a new
	// record before the last part of the previous one).
	ErrBadFlag = errors.New("bad RecordIO continuation flag")
	// ErrChecksum reports a TFRecord whose length or data does not match its
	// masked CRC32C.
	ErrChecksum = errors.New("TFRecord checksum mismatch")
	// ErrRecordTooLarge reports a record longer than the reader's maxRecord.
	ErrRecordTooLarge = errors.New("record too large")
	// ErrPayloadTooLarge reports a single record that does not fit in a
	// mini-batch of maxPayload bytes.
	ErrPayloadTooLarge = errors.New("record larger than the maximum payload")
	// ErrCorruptGzip reports input that is not a valid gzip stream.
	ErrCorruptGzip = errors.New("corrupt gzip stream")
	// ErrUnsupported reports an unknown SplitType, CompressionType or
	// BatchStrategy.
	ErrUnsupported = errors.New("unsupported value")
)

// RecordError locates a problem in a record stream.
type RecordError struct {
	// Index is the number of the record, counting from 0.
	Index int
	// Offset is the byte offset in the (decompressed) stream at which the
	// record starts, or -1 where it is not known (a Batcher sees records,
	// not bytes).
	Offset int64
	// Detail adds what was found, for example the sizes involved; may be
	// empty.
	Detail string
	// Err is one of the package's sentinel errors, or the underlying read
	// error.
	Err error
}

func (e *RecordError) Error() string {
	msg := fmt.Sprintf("record %d: %v", e.Index, e.Err)
	if e.Offset >= 0 {
		msg = fmt.Sprintf("record %d at byte offset %d: %v", e.Index, e.Offset, e.Err)
	}
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

func (e *RecordError) Unwrap() error { return e.Err }

// GzipError reports corrupt gzip input.
type GzipError struct {
	// Offset is the number of decompressed bytes produced before the error.
	Offset int64
	// Err is the decoder's error.
	Err error
}

func (e *GzipError) Error() string {
	return fmt.Sprintf("%v after %d decompressed bytes: %v", ErrCorruptGzip, e.Offset, e.Err)
}

// Unwrap returns both ErrCorruptGzip and the decoder's error, so either can
// be matched with errors.Is.
func (e *GzipError) Unwrap() []error { return []error{ErrCorruptGzip, e.Err} }
