package dataproc

import (
	"bytes"
	"fmt"
)

// parseCSV splits a CSV record into rows, each an array of string values
// holding the fields' text (RFC 4180: fields separated by commas, rows by
// LF or CRLF, a field in double quotes may hold commas, line breaks and
// doubled quotes). Field text is never reinterpreted, so numbers keep their
// exact spelling. An unquoted field's text aliases data.
func parseCSV(data []byte) ([]value, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty CSV record", ErrInvalidRecord)
	}
	var rows []value
	// Size the first row from its commas (an overestimate when quoted
	// fields hold commas) and later rows like the one before.
	line := data
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	fields := make([]value, 0, bytes.Count(line, []byte{','})+1)
	i := 0
	for {
		// One field starts at i.
		var text []byte
		if i < len(data) && data[i] == '"' {
			start := i
			i++
			var buf []byte
			for {
				j := bytes.IndexByte(data[i:], '"')
				if j < 0 {
					return nil, fmt.Errorf("%w: CSV: quoted field starting at byte %d is not closed", ErrInvalidRecord, start)
				}
				buf = append(buf, data[i:i+j]...)
				i += j + 1
				if i < len(data) && data[i] == '"' { // "" is one quote
					buf = append(buf, '"')
					i++
					continue
				}
				break
			}
			if buf == nil {
				buf = []byte{}
			}
			text = buf
			if i < len(data) && data[i] != ',' && data[i] != '\n' && !(data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n') {
				return nil, fmt.Errorf("%w: CSV: unexpected %q after the closing quote at byte %d", ErrInvalidRecord, data[i], i)
			}
		} else {
			start := i
			for i < len(data) && data[i] != ',' && data[i] != '\n' {
				if data[i] == '"' {
					return nil, fmt.Errorf("%w: CSV: quote inside an unquoted field at byte %d", ErrInvalidRecord, i)
				}
				if data[i] == '\r' && (i+1 == len(data) || data[i+1] != '\n') {
					return nil, fmt.Errorf("%w: CSV: bare carriage return at byte %d", ErrInvalidRecord, i)
				}
				if data[i] == '\r' {
					break
				}
				i++
			}
			text = data[start:i:i]
		}
		fields = append(fields, value{kind: kindString, text: text})

		switch {
		case i == len(data):
			return append(rows, value{kind: kindArray, arr: fields}), nil
		case data[i] == ',':
			i++
			continue
		}
		// End of a row: LF or CRLF.
		if data[i] == '\r' {
			i++
		}
		i++
		rows = append(rows, value{kind: kindArray, arr: fields})
		if i == len(data) { // the record's final line break ends the last row
			return rows, nil
		}
		fields = make([]value, 0, len(fields))
	}
}

// appendCSVRow writes v as one CSV row: an array's elements are its fields,
// anything else is a single field.
func appendCSVRow(dst []byte, v value) ([]byte, error) {
	if v.kind != kindArray {
		return appendCSVField(dst, v, true)
	}
	if len(v.arr) == 0 {
		return nil, fmt.Errorf("%w: an empty array is not a CSV row", ErrUnsupported)
	}
	var err error
	for i, e := range v.arr {
		if i > 0 {
			dst = append(dst, ',')
		}
		if dst, err = appendCSVField(dst, e, len(v.arr) == 1); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// appendCSVField writes one scalar as a CSV field, quoted only when it has to
// be. A row's only field is quoted when empty, so the row is not a blank
// line.
func appendCSVField(dst []byte, v value, only bool) ([]byte, error) {
	switch v.kind {
	case kindArray, kindObject:
		return nil, fmt.Errorf("%w: a nested JSON array or object cannot be a CSV field", ErrUnsupported)
	case kindNull:
		if only {
			return append(dst, '"', '"'), nil
		}
		return dst, nil
	}
	t := v.text
	if len(t) == 0 && only {
		return append(dst, '"', '"'), nil
	}
	if bytes.IndexAny(t, ",\"\r\n") < 0 {
		return append(dst, t...), nil
	}
	dst = append(dst, '"')
	for _, c := range t {
		if c == '"' {
			dst = append(dst, '"')
		}
		dst = append(dst, c)
	}
	return append(dst, '"'), nil
}
