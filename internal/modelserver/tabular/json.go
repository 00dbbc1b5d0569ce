package tabular

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
)

// ParseJSON parses application/json in the shapes SageMaker's tabular
// algorithms accept:
//
//	{"instances": [{"features": [1.5, 2, null]}, ...]}
//	{"instances": [[1.5, 2, null], ...]}
//	{"features": [1.5, 2, null]}
//	[[1.5, 2, null], ...]   or   [1.5, 2, null]
//
// null (and the strings "" and "nan") are missing values.
func ParseJSON(body []byte, opt Options) (*Matrix, error) {
	var v any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		return nil, rowErr(0, 0, "invalid json: %v", err)
	}
	if d.More() {
		return nil, rowErr(0, 0, "invalid json: trailing data after the first value")
	}
	var rows []any
	switch x := v.(type) {
	case map[string]any:
		if inst, ok := x["instances"]; ok {
			if rows, ok = inst.([]any); !ok {
				return nil, rowErr(0, 0, `"instances" must be an array`)
			}
		} else if _, ok := x["features"]; ok {
			rows = []any{x}
		} else {
			return nil, rowErr(0, 0, `json object needs "instances" or "features"`)
		}
	case []any:
		rows = x
		if len(x) > 0 && !isArrayOrObject(x[0]) {
			rows = []any{x} // a single flat row
		}
	default:
		return nil, rowErr(0, 0, "json body must be an object or an array")
	}
	b := newBuilder(opt)
	for i, r := range rows {
		if err := b.addRow(i+1, r); err != nil {
			return nil, err
		}
	}
	return b.finish(), nil
}

// ParseJSONLines parses application/jsonlines: one JSON value per line,
// either {"features": [...]} or a bare array.
func ParseJSONLines(body []byte, opt Options) (*Matrix, error) {
	b := newBuilder(opt)
	row := 0
	for len(body) > 0 {
		var line []byte
		if i := bytes.IndexByte(body, '\n'); i >= 0 {
			line, body = body[:i], body[i+1:]
		} else {
			line, body = body, nil
		}
		row++
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var v any
		d := json.NewDecoder(bytes.NewReader(line))
		d.UseNumber()
		if err := d.Decode(&v); err != nil || d.More() {
			if err == nil {
				err = fmt.Errorf("trailing data")
			}
			return nil, rowErr(row, 0, "invalid json: %v", err)
		}
		if err := b.addRow(row, v); err != nil {
			return nil, err
		}
	}
	return b.finish(), nil
}

func isArrayOrObject(v any) bool {
	switch v.(type) {
	case []any, map[string]any:
		return true
	}
	return false
}

type builder struct {
	opt  Options
	cols int
	m    Matrix
}

func newBuilder(opt Options) *builder { return &builder{opt: opt, cols: opt.Width} }

func (b *builder) addRow(row int, v any) error {
	if obj, ok := v.(map[string]any); ok {
		f, ok := obj["features"]
		if !ok {
			return rowErr(row, 0, `object has no "features"`)
		}
		v = f
	}
	vals, ok := v.([]any)
	if !ok {
		return rowErr(row, 0, "features must be an array of numbers")
	}
	if b.opt.MaxRows > 0 && b.m.Rows >= b.opt.MaxRows {
		return rowErr(row, 0, "too many rows (limit %d)", b.opt.MaxRows)
	}
	if b.cols == 0 {
		b.cols = len(vals)
	}
	if len(vals) > b.cols {
		return rowErr(row, b.cols+1, "too many values: expected %d", b.cols)
	}
	if b.opt.Width == 0 && len(vals) != b.cols {
		return rowErr(row, 0, "has %d values, row 1 has %d", len(vals), b.cols)
	}
	start := len(b.m.Data)
	b.m.Data = append(b.m.Data, make([]float32, b.cols)...)
	out := b.m.Data[start:]
	fillNaN(out)
	for j, x := range vals {
		switch n := x.(type) {
		case nil:
		case json.Number:
			f, err := n.Float64()
			if err != nil && !math.IsInf(f, 0) {
				return rowErr(row, j+1, "cannot parse %q as a number", n.String())
			}
			out[j] = float32(f)
		case string:
			f, ok := ParseNumber([]byte(n))
			if !ok && len(bytes.TrimSpace([]byte(n))) != 0 {
				return rowErr(row, j+1, "cannot parse %q as a number", clip([]byte(n)))
			}
			if ok {
				out[j] = f
			}
		default:
			return rowErr(row, j+1, "value is not a number")
		}
	}
	b.m.Rows++
	return nil
}

func (b *builder) finish() *Matrix {
	b.m.Cols = b.cols
	return &b.m
}
