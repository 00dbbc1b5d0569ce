package tabular

import (
	"bytes"
)

// maxLibSVMIndex bounds feature indices when no Width is given.
const maxLibSVMIndex = 1 << 20

// ParseLibSVM parses text/libsvm (also sent as text/x-libsvm): one row per
// line, "label index:value index:value ...", zero-based indices as XGBoost
// reads them. Tokens without a colon (the label) and qid: tokens are
// ignored; absent features are missing. With Width 0 the widest row decides
// the number of columns.
func ParseLibSVM(body []byte, opt Options) (*Matrix, error) {
	body = bytes.TrimSpace(body)
	type entry struct {
		row, col int
		v        float32
	}
	// Parse into a matrix of the known width directly; otherwise collect
	// entries first to learn the width.
	var entries []entry
	m := &Matrix{Cols: opt.Width}
	row, nrows := 0, 0
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
		if opt.MaxRows > 0 && nrows >= opt.MaxRows {
			return nil, rowErr(row, 0, "too many rows (limit %d)", opt.MaxRows)
		}
		r := nrows
		nrows++
		if opt.Width > 0 {
			start := len(m.Data)
			m.Data = append(m.Data, make([]float32, opt.Width)...)
			fillNaN(m.Data[start:])
		}
		tok := 0
		for len(line) > 0 {
			for len(line) > 0 && (line[0] == ' ' || line[0] == '\t' || line[0] == '\r') {
				line = line[1:]
			}
			if len(line) == 0 {
				break
			}
			end := bytes.IndexAny(line, " \t\r")
			if end < 0 {
				end = len(line)
			}
			t := line[:end]
			line = line[end:]
			tok++
			colon := bytes.IndexByte(t, ':')
			if colon < 0 || bytes.HasPrefix(t, []byte("qid:")) {
				continue
			}
			idx, ok := parseIndex(t[:colon])
			if !ok {
				return nil, rowErr(row, tok, "bad feature index %q", clip(t[:colon]))
			}
			v, ok := ParseNumber(t[colon+1:])
			if !ok {
				return nil, rowErr(row, tok, "cannot parse %q as a number", clip(t[colon+1:]))
			}
			if opt.Width > 0 {
				if idx >= opt.Width {
					return nil, rowErr(row, tok, "feature index %d out of range: the model takes %d features", idx, opt.Width)
				}
				m.Data[r*opt.Width+idx] = v
				continue
			}
			if idx >= maxLibSVMIndex {
				return nil, rowErr(row, tok, "feature index %d too large", idx)
			}
			entries = append(entries, entry{r, idx, v})
			m.Cols = max(m.Cols, idx+1)
		}
	}
	m.Rows = nrows
	if opt.Width > 0 {
		return m, nil
	}
	if int64(m.Rows)*int64(m.Cols) > 1<<28 {
		return nil, rowErr(0, 0, "matrix too large (%d rows x %d columns)", m.Rows, m.Cols)
	}
	m.Data = make([]float32, m.Rows*m.Cols)
	fillNaN(m.Data)
	for _, e := range entries {
		m.Data[e.row*m.Cols+e.col] = e.v
	}
	return m, nil
}

func parseIndex(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}
