// Package records splits the byte stream of one batch transform input object
// into records and packs those records into mini-batches, the way SageMaker
// batch transform does for its SplitType, CompressionType and BatchStrategy
// settings.
//
// Everything streams: a Reader holds at most one record (bounded by the
// maxRecord given to NewReader) plus a fixed read buffer, and a Batcher holds
// the mini-batch it is building (bounded by maxPayload). Memory therefore
// does not depend on the size of the object.
//
// # Split types
//
//   - "None": the whole stream is one record. An empty stream has no records.
//   - "Line": records end at each '\n' byte, as SageMaker documents ("split
//     records on a newline character boundary"). A "\r\n" pair also ends a
//     record and the '\r' is dropped with the '\n', as SageMaker's local mode
//     does when it reads input as text; a lone '\r' is ordinary data. A last
//     line without a newline is a record. A final newline does not start an
//     extra empty record, but an empty line in the middle of the stream is an
//     (empty) record: SageMaker splits on every newline boundary and does not
//     document skipping blank lines, and keeping them keeps record numbers
//     equal to line numbers. Records are returned without their terminator.
//   - "RecordIO": MXNet's framing. Each part is the magic 0xCED7230A, a
//     length word (little-endian; upper 3 bits the continuation flag cflag,
//     lower 29 bits the length), the data and zero padding to a multiple of
//     4 bytes. cflag 0 is a whole record; a record the writer split because
//     the magic number occurred in its data (at a 4-byte aligned position)
//     is a part with cflag 1, parts with cflag 2, and a last part with cflag
//     3, and the magic number is put back between the parts, as MXNet's
//     reader does. Records are returned without framing or padding.
//   - "TFRecord": a uint64 little-endian length, the masked CRC32C of those 8
//     bytes, the data and the masked CRC32C of the data. Both checksums are
//     verified.
//
// # Batches
//
// With BatchStrategy "SingleRecord" each batch is one record; with
// "MultiRecord" a batch holds as many whole records as fit in maxPayload
// bytes. Records are joined as SageMaker sends them: Line records each end
// with "\n"; RecordIO and TFRecord records are framed again (so that the
// container can split them) in MultiRecord batches and sent as bare data,
// padding removed, in SingleRecord batches, as SageMaker documents; a "None"
// record is sent as it is. The payload limit counts the bytes actually sent,
// newline and framing included.
//
// # Errors
//
// Bad input yields a *RecordError that names the record (numbered from 0)
// and the byte offset in the decompressed stream where it starts, and wraps
// one of the sentinel errors (ErrTruncated, ErrBadMagic, ErrBadFlag,
// ErrChecksum, ErrRecordTooLarge, ErrPayloadTooLarge), so a caller can test
// with errors.Is and print the error as a failure reason. Corrupt gzip
// input yields a *GzipError wrapping ErrCorruptGzip.
package records
