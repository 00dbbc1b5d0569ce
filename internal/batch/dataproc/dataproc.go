// Package dataproc applies a batch transform job's DataProcessing to its
// records, as SageMaker does: InputFilter selects the part of each input
// record the model gets, JoinSource "Input" joins each input record with
// the model's output for it, and OutputFilter selects the part of the joined
// (or plain output) record that is written.
//
// Filters are JSONPath expressions in SageMaker's subset: `$`, child names
// (`.name`, `['a','b']`), the wildcard `*`, indexes (`[1]`, `[1,3,5]`,
// negative from the end) and slices with an exclusive end (`[2:5]`, `[:5]`,
// `[2:]`), at most 63 characters. They are parsed by an RFC 9535 parser
// (github.com/theory/jsonpath) and evaluated here over a JSON tree that
// keeps member order and the exact text of numbers. A definite path
// (`$.features`, `$[0]`) yields the value itself, any other an array of the
// matches (`$[1:]`, `$[0,5:]`), and a final list of names an object of
// those members (`$['id','SageMakerOutput']`). A filter that selects
// nothing, or a definite path whose name or index is missing, fails the
// record with ErrNoMatch. Records are JSON
// (application/json), JSON Lines (application/jsonlines) or CSV (text/csv).
// A CSV row is treated as a JSON array of its fields' text and written back
// as CSV, so only index-based paths (`$[0]`, `$[1:]`) select anything in it.
//
// Joining follows SageMaker's rules: the output is added to a JSON object
// input under "SageMakerOutput"; any other JSON input (an array, a scalar)
// becomes {"SageMakerInput": input, "SageMakerOutput": output}; a CSV row
// gets the output's values appended at its end.
//
// A record holding several CSV rows or several JSON values (a JSON Lines
// record with several lines) is processed row by row; Output then expects
// as many output rows as input rows. A record's trailing line break is kept.
package dataproc

import (
	"errors"
	"fmt"
	"strings"
)

var (
	// ErrInvalidConfig marks a DataProcessing that cannot be used: an
	// unknown JoinSource, a filter that does not parse or leaves
	// SageMaker's subset, or a content type the filters cannot read.
	ErrInvalidConfig = errors.New("invalid DataProcessing")
	// ErrInvalidRecord marks a record that is not valid in its content type.
	ErrInvalidRecord = errors.New("invalid record")
	// ErrNoMatch marks a filter that selects nothing in a record.
	ErrNoMatch = errors.New("filter selects nothing")
	// ErrUnsupported marks a record whose shape cannot be joined or written
	// in the required format, such as a JSON object as a CSV field, or input
	// and output with different numbers of rows.
	ErrUnsupported = errors.New("cannot process record")
)

// Config is a transform job's DataProcessing with the content types it
// applies to.
type Config struct {
	// InputFilter is a JSONPath expression applied to each input record;
	// "" or "$" passes the record whole.
	InputFilter string
	// OutputFilter is a JSONPath expression applied to each joined (or
	// output) record; "" or "$" keeps it whole.
	OutputFilter string
	// JoinSource is "None" (or "") or "Input".
	JoinSource string
	// ContentType is the input's content type (TransformInput.ContentType).
	ContentType string
	// Accept is the output's content type (TransformOutput.Accept); when
	// empty the output is taken to be in ContentType.
	Accept string
}

// format is a record encoding the filters can read.
type format uint8

const (
	formatNone format = iota
	formatCSV
	formatJSON
	formatJSONLines
)

// parseFormat maps a MIME type (parameters ignored) to a format.
func parseFormat(contentType string) format {
	mt, _, _ := strings.Cut(contentType, ";")
	switch strings.ToLower(strings.TrimSpace(mt)) {
	case "text/csv":
		return formatCSV
	case "application/json":
		return formatJSON
	case "application/jsonlines", "application/jsonl", "application/x-jsonlines":
		return formatJSONLines
	}
	return formatNone
}

// Processor applies one job's DataProcessing. It holds no per-record state
// and is safe for concurrent use.
type Processor struct {
	in, out *filter
	join    bool
	inFmt   format
	outFmt  format
}

// New compiles cfg. Errors wrap ErrInvalidConfig.
func New(cfg Config) (*Processor, error) {
	p := &Processor{}
	switch cfg.JoinSource {
	case "", "None":
	case "Input":
		p.join = true
	default:
		return nil, fmt.Errorf("%w: JoinSource %q is not None or Input", ErrInvalidConfig, cfg.JoinSource)
	}
	var err error
	if p.in, err = compileFilter(cfg.InputFilter); err != nil {
		return nil, fmt.Errorf("InputFilter: %w", err)
	}
	if p.out, err = compileFilter(cfg.OutputFilter); err != nil {
		return nil, fmt.Errorf("OutputFilter: %w", err)
	}
	if p.Identity() {
		return p, nil
	}
	p.inFmt = parseFormat(cfg.ContentType)
	accept := cfg.Accept
	if accept == "" {
		accept = cfg.ContentType
	}
	p.outFmt = parseFormat(accept)
	if (p.in != nil || p.join) && p.inFmt == formatNone {
		return nil, fmt.Errorf("%w: ContentType %q: InputFilter and JoinSource need text/csv, application/json or application/jsonlines", ErrInvalidConfig, cfg.ContentType)
	}
	if (p.out != nil || p.join) && p.outFmt == formatNone {
		return nil, fmt.Errorf("%w: Accept %q: OutputFilter and JoinSource need text/csv, application/json or application/jsonlines", ErrInvalidConfig, accept)
	}
	return p, nil
}

// Identity reports whether records pass through unchanged: no filter and
// no join. The caller may then skip Input and Output altogether.
func (p *Processor) Identity() bool {
	return p.in == nil && p.out == nil && !p.join
}

// FiltersInput reports whether Input changes records.
func (p *Processor) FiltersInput() bool { return p.in != nil }

// Joins reports whether Output needs the input record (JoinSource Input);
// otherwise its input argument is ignored and may be nil.
func (p *Processor) Joins() bool { return p.join }

// Input applies InputFilter to one input record and returns what the model
// gets, in the same content type.
func (p *Processor) Input(record []byte) ([]byte, error) {
	if p.in == nil {
		return record, nil
	}
	rows, err := parse(record, p.inFmt)
	if err != nil {
		return nil, fmt.Errorf("input record: %w", err)
	}
	for i := range rows {
		if rows[i], err = p.in.apply(rows[i]); err != nil {
			return nil, fmt.Errorf("InputFilter: %w", err)
		}
	}
	out, err := write(make([]byte, 0, len(record)), rows, p.inFmt)
	if err != nil {
		return nil, fmt.Errorf("InputFilter: %w", err)
	}
	return append(out, lineEnd(record)...), nil
}

// Output joins one input record (the original, before InputFilter) with
// the model's output record for it when JoinSource is Input, then applies
// OutputFilter, and returns the record to write. A joined record is in the
// input's content type, otherwise in Accept's.
func (p *Processor) Output(input, output []byte) ([]byte, error) {
	if p.out == nil && !p.join {
		return output, nil
	}
	outs, err := parse(output, p.outFmt)
	if err != nil {
		return nil, fmt.Errorf("output record: %w", err)
	}
	rows, f := outs, p.outFmt
	if p.join {
		ins, err := parse(input, p.inFmt)
		if err != nil {
			return nil, fmt.Errorf("input record: %w", err)
		}
		if len(ins) != len(outs) {
			return nil, fmt.Errorf("%w: the input record has %d rows and its output %d", ErrUnsupported, len(ins), len(outs))
		}
		for i := range ins {
			if ins[i], err = p.joinRow(ins[i], outs[i]); err != nil {
				return nil, err
			}
		}
		rows, f = ins, p.inFmt
	}
	if p.out != nil {
		for i := range rows {
			if rows[i], err = p.out.apply(rows[i]); err != nil {
				return nil, fmt.Errorf("OutputFilter: %w", err)
			}
		}
	}
	res, err := write(make([]byte, 0, len(input)+len(output)+16), rows, f)
	if err != nil {
		return nil, fmt.Errorf("OutputFilter: %w", err)
	}
	return append(res, lineEnd(output)...), nil
}

// joinRow joins one input row with its output row.
func (p *Processor) joinRow(in, out value) (value, error) {
	if p.inFmt == formatCSV {
		var extra []value
		switch {
		case out.kind == kindArray: // a CSV row or a JSON array
			extra = out.arr
		case out.kind == kindObject:
			return value{}, fmt.Errorf("%w: a JSON object output cannot be appended to a CSV row", ErrUnsupported)
		default:
			extra = []value{out}
		}
		row := make([]value, 0, len(in.arr)+len(extra))
		in.arr = append(append(row, in.arr...), extra...)
		return in, nil
	}
	if p.outFmt == formatCSV {
		out = csvToJSON(out)
	}
	if in.kind == kindObject {
		in.set("SageMakerOutput", out)
		return in, nil
	}
	return value{kind: kindObject, obj: []member{
		{key: "SageMakerInput", val: in},
		{key: "SageMakerOutput", val: out},
	}}, nil
}

// csvToJSON turns a CSV output row into the JSON value joined into a JSON
// input: fields spelled as JSON numbers become numbers, the rest strings; a
// single field is that value, several an array.
func csvToJSON(row value) value {
	for i, f := range row.arr {
		if isJSONNumber(f.text) {
			row.arr[i].kind = kindNumber
		}
	}
	if len(row.arr) == 1 {
		return row.arr[0]
	}
	return row
}

func parse(record []byte, f format) ([]value, error) {
	if f == formatCSV {
		return parseCSV(record)
	}
	return parseJSON(record)
}

// write encodes rows in f, one per line.
func write(dst []byte, rows []value, f format) ([]byte, error) {
	var err error
	for i, r := range rows {
		if i > 0 {
			dst = append(dst, '\n')
		}
		if f == formatCSV {
			if dst, err = appendCSVRow(dst, r); err != nil {
				return nil, err
			}
		} else {
			dst = appendJSON(dst, r)
		}
	}
	return dst, nil
}

// lineEnd returns record's trailing line break, if any, so that a filtered
// record is framed like the original.
func lineEnd(record []byte) string {
	n := len(record)
	switch {
	case n >= 2 && record[n-2] == '\r' && record[n-1] == '\n':
		return "\r\n"
	case n >= 1 && record[n-1] == '\n':
		return "\n"
	}
	return ""
}

// FiltersOutput reports whether an OutputFilter is set.
func (p *Processor) FiltersOutput() bool { return p.out != nil }
