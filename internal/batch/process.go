package batch

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/berth-io/berth/internal/batch/dataproc"
	"github.com/berth-io/berth/internal/batch/records"
)

// procReader applies InputFilter to each record of rd before the batcher
// sees it, and keeps the original records (when keep) until the batch that
// holds them is formed, so Output can join them with the model's answer.
// It holds at most one batch's records plus the one the batcher keeps
// pending for the next batch.
type procReader struct {
	rd   records.Reader
	p    *dataproc.Processor
	keep bool

	next      int      // index of the next record read from rd
	base      int      // index of originals[0]
	originals [][]byte // records base, base+1, ... not yet taken
}

// inputError is a record InputFilter could not process.
type inputError struct {
	index int
	err   error
}

func (e *inputError) Error() string { return fmt.Sprintf("record %d: %v", e.index+1, e.err) }
func (e *inputError) Unwrap() error { return e.err }

func (r *procReader) Next() ([]byte, error) {
	rec, err := r.rd.Next()
	if err != nil {
		return nil, err
	}
	idx := r.next
	r.next++
	if r.keep {
		r.originals = append(r.originals, bytes.Clone(rec))
	}
	out, err := r.p.Input(rec)
	if err != nil {
		return nil, &inputError{index: idx, err: err}
	}
	return out, nil
}

// take returns the original records first..first+count-1 and forgets
// them; nil when originals are not kept.
func (r *procReader) take(first, count int) [][]byte {
	if !r.keep {
		return nil
	}
	lo, hi := first-r.base, first-r.base+count
	ins := r.originals[lo:hi:hi]
	// Copy the rest (at most the pending record) so the taken records'
	// array is not kept alive by the reader.
	r.originals = append([][]byte(nil), r.originals[hi:]...)
	r.base = first + count
	return ins
}

// output splits a batch's answer into one output record per input record
// and applies Output to each. With SplitType Line and several records the
// answer must hold one line per record; otherwise the whole answer is the
// output of the batch's single record.
func (r *run) output(src string, res *result) ([]byte, error) {
	p, bt := r.job.Process, res.batch
	if !p.Joins() && !p.FiltersOutput() {
		return res.out, nil
	}
	outs := [][]byte{res.out}
	if bt.Count > 1 {
		outs = splitLines(res.out)
		if len(outs) != bt.Count {
			return nil, &Failure{Reason: fmt.Sprintf("Input object %s, %s: the model answered %d lines for %d records; with DataProcessing each input line needs one output line.", src, recordRange(bt), len(outs), bt.Count)}
		}
	}
	var buf []byte
	for i, o := range outs {
		var in []byte
		if res.inputs != nil {
			in = res.inputs[i]
		}
		rec, err := p.Output(in, o)
		if err != nil {
			return nil, &Failure{Reason: fmt.Sprintf("Input object %s, record %d: %v", src, bt.First+i+1, err)}
		}
		buf = append(buf, rec...)
	}
	return buf, nil
}

// splitLines cuts b after each '\n'; each part keeps its newline, and a
// last part without one is a line too.
func splitLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			out = append(out, b)
			break
		}
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out
}

// recordReason renders an error about the input's content (bad framing, a
// checksum, corrupt gzip, a record too large, a record the filters cannot
// read) as a FailureReason naming the object; records are counted from 1,
// as in the model errors' reasons, with the byte offset in the
// decompressed stream where records knows it.
func recordReason(src string, err error) (string, bool) {
	var re *records.RecordError
	var ge *records.GzipError
	var ie *inputError
	switch {
	case errors.As(err, &re):
		at := ""
		if re.Offset >= 0 {
			at = fmt.Sprintf(" at byte offset %d", re.Offset)
		}
		detail := ""
		if re.Detail != "" {
			detail = " (" + re.Detail + ")"
		}
		return fmt.Sprintf("Input object %s, record %d%s: %v%s.", src, re.Index+1, at, re.Err, detail), true
	case errors.As(err, &ge):
		return fmt.Sprintf("Input object %s: %v.", src, ge), true
	case errors.As(err, &ie):
		return fmt.Sprintf("Input object %s, %v.", src, ie), true
	case errors.Is(err, records.ErrUnsupported):
		return fmt.Sprintf("Input object %s: %v.", src, err), true
	}
	return "", false
}
