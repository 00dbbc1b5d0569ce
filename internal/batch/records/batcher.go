package records

import (
	"fmt"
	"io"
)

// Batch strategies, as SageMaker spells them.
const (
	SingleRecord = "SingleRecord"
	MultiRecord  = "MultiRecord"
)

// Batch is one mini-batch: the request body and the records it holds.
type Batch struct {
	// Body is the request body. It belongs to the caller: the Batcher never
	// touches it again.
	Body []byte
	// First is the number of the batch's first record (counting from 0)
	// and Count how many records it holds.
	First, Count int
}

// Batcher packs the records of a Reader into mini-batches.
type Batcher struct {
	rd         Reader
	multi      bool
	split      string
	maxPayload int64

	next    int    // number of the next record to take from rd
	pending []byte // a record read from rd that did not fit the last batch
	hasPend bool
	scratch []byte // reusable buffer a MultiRecord batch is built in
	err     error  // sticky
}

// NewBatcher packs the records of rd into mini-batches: BatchStrategy
// "SingleRecord" (one record per batch; also for an empty strategy) or
// "MultiRecord" (as many whole records as fit in maxPayload bytes).
// splitType is the one rd was made with; it decides how records are joined
// (see the package doc). A single record that does not fit in maxPayload
// bytes is a *RecordError wrapping ErrPayloadTooLarge. maxPayload 0 or less
// means no limit, as MaxPayloadInMB 0 does in SageMaker; a MultiRecord
// batch then holds every record of the stream, so memory is bounded only by
// the stream's size.
func NewBatcher(rd Reader, strategy, splitType string, maxPayload int64) *Batcher {
	b := &Batcher{rd: rd, split: splitType, maxPayload: maxPayload}
	switch strategy {
	case "", SingleRecord:
	case MultiRecord:
		b.multi = true
	default:
		b.err = fmt.Errorf("%w: BatchStrategy %q", ErrUnsupported, strategy)
	}
	switch splitType {
	case "", SplitNone, SplitLine, SplitRecordIO, SplitTFRecord:
	default:
		b.err = fmt.Errorf("%w: SplitType %q", ErrUnsupported, splitType)
	}
	if splitType == "" || splitType == SplitNone {
		// The whole object is the one record: nothing to pack together.
		b.multi = false
	}
	return b
}

// Next returns the next mini-batch, or io.EOF after the last one. After an
// error, Next keeps returning it.
func (b *Batcher) Next() (Batch, error) {
	if b.err != nil {
		return Batch{}, b.err
	}
	if !b.multi {
		rec, err := b.record()
		if err != nil {
			b.err = err
			return Batch{}, err
		}
		size := len(rec) + b.singleOverhead()
		if err := b.checkFits(size, b.next); err != nil {
			return Batch{}, err
		}
		body := b.appendSingle(make([]byte, 0, size), rec)
		batch := Batch{Body: body, First: b.next, Count: 1}
		b.next++
		return batch, nil
	}

	b.scratch = b.scratch[:0]
	first, count := b.next, 0
	for {
		rec, err := b.record()
		if err == io.EOF && count > 0 {
			break // the next call returns io.EOF again
		}
		if err != nil {
			b.err = err
			return Batch{}, err
		}
		mark := len(b.scratch)
		b.scratch = b.appendFramed(b.scratch, rec)
		if b.maxPayload > 0 && int64(len(b.scratch)) > b.maxPayload {
			size := len(b.scratch) - mark
			b.scratch = b.scratch[:mark]
			if count == 0 {
				return Batch{}, b.checkFits(size, b.next)
			}
			// Keep the record for the next batch. It stays valid: rd is
			// not read again until it has been used.
			b.pending, b.hasPend = rec, true
			break
		}
		b.next++
		count++
		if b.maxPayload > 0 && int64(len(b.scratch)) == b.maxPayload {
			break
		}
	}
	body := make([]byte, len(b.scratch))
	copy(body, b.scratch)
	return Batch{Body: body, First: first, Count: count}, nil
}

// record returns the pending record if there is one, else the next record
// of rd.
func (b *Batcher) record() ([]byte, error) {
	if b.hasPend {
		b.hasPend = false
		rec := b.pending
		b.pending = nil
		return rec, nil
	}
	return b.rd.Next()
}

func (b *Batcher) checkFits(size, index int) error {
	if b.maxPayload > 0 && int64(size) > b.maxPayload {
		b.err = &RecordError{
			Index:  index,
			Offset: -1,
			Detail: fmt.Sprintf("%d bytes to send, limit %d", size, b.maxPayload),
			Err:    ErrPayloadTooLarge,
		}
		return b.err
	}
	return nil
}

// singleOverhead is what appendSingle adds to a record.
func (b *Batcher) singleOverhead() int {
	if b.split == SplitLine {
		return 1
	}
	return 0
}

// appendSingle appends rec as a SingleRecord body: binary records are sent
// bare (SageMaker removes the framing and padding), lines keep their
// newline.
func (b *Batcher) appendSingle(dst, rec []byte) []byte {
	dst = append(dst, rec...)
	if b.split == SplitLine {
		dst = append(dst, '\n')
	}
	return dst
}

// appendFramed appends rec as part of a MultiRecord body, framed so the
// container can split the body again.
func (b *Batcher) appendFramed(dst, rec []byte) []byte {
	switch b.split {
	case SplitLine:
		return append(append(dst, rec...), '\n')
	case SplitRecordIO:
		return AppendRecordIO(dst, rec)
	case SplitTFRecord:
		return AppendTFRecord(dst, rec)
	default:
		return append(dst, rec...)
	}
}
