package tabular

import (
	"bytes"
)

// SniffDelimiter picks the CSV delimiter from the first line the way the
// SageMaker container's csv.Sniffer use ends up in practice: comma unless the
// line has none and has a tab, semicolon or pipe.
func SniffDelimiter(firstLine []byte) byte {
	if bytes.IndexByte(firstLine, ',') >= 0 {
		return ','
	}
	for _, d := range []byte{'\t', ';', '|'} {
		if bytes.IndexByte(firstLine, d) >= 0 {
			return d
		}
	}
	return ','
}

// ParseCSV parses text/csv: no header, no label column, one row per line;
// an empty field is a missing value. Blank lines are skipped; all rows must
// have the same number of fields. Values are written straight into the
// matrix, with no allocation per value.
func ParseCSV(body []byte, opt Options) (*Matrix, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return &Matrix{Cols: opt.Width}, nil
	}
	first := body
	if i := bytes.IndexByte(body, '\n'); i >= 0 {
		first = body[:i]
	}
	delim := SniffDelimiter(first)
	fields := bytes.Count(first, []byte{delim}) + 1
	cols := opt.Width
	if cols == 0 {
		cols = fields
	}
	estRows := bytes.Count(body, []byte{'\n'}) + 1
	if opt.MaxRows > 0 && estRows > opt.MaxRows {
		estRows = opt.MaxRows + 1
	}
	m := &Matrix{Cols: cols, Data: make([]float32, 0, estRows*cols)}
	row := 0
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		row++
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if opt.MaxRows > 0 && m.Rows >= opt.MaxRows {
			return nil, rowErr(row, 0, "too many rows (limit %d)", opt.MaxRows)
		}
		start := len(m.Data)
		m.Data = append(m.Data, make([]float32, cols)...)
		out := m.Data[start:]
		col := 0
		for {
			var f []byte
			i := bytes.IndexByte(line, delim)
			if i >= 0 {
				f, line = line[:i], line[i+1:]
			} else {
				f = line
			}
			if col >= cols {
				if opt.Width > 0 {
					return nil, rowErr(row, col+1, "too many values: the model takes %d features", cols)
				}
				return nil, rowErr(row, col+1, "too many values: row 1 has %d", cols)
			}
			if v, ok := ParseNumber(f); ok {
				out[col] = v
			} else if len(bytes.Trim(f, " \t\r")) == 0 {
				out[col] = nan()
			} else {
				return nil, rowErr(row, col+1, "cannot parse %q as a number", clip(f))
			}
			col++
			if i < 0 {
				break
			}
		}
		if col != fields {
			return nil, rowErr(row, 0, "has %d values, row 1 has %d", col, fields)
		}
		fillNaN(out[col:])
		m.Rows++
	}
	return m, nil
}

func clip(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "…"
	}
	return string(b)
}
