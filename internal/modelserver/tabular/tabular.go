// Package tabular parses the request bodies of SageMaker's tabular
// built-in algorithms — text/csv, text/libsvm, application/json,
// application/jsonlines and application/x-parquet — into a dense float32 matrix where NaN marks a
// missing value. It is framework-neutral: any model server that takes rows
// of numbers can use it.
//
// Parse errors are *RowError values naming the 1-based row and column.
package tabular

import (
	"errors"
	"fmt"
	"math"
)

// Matrix is a dense row-major matrix; NaN marks a missing value.
type Matrix struct {
	Rows, Cols int
	Data       []float32
}

// Row returns row i.
func (m *Matrix) Row(i int) []float32 { return m.Data[i*m.Cols : (i+1)*m.Cols] }

// ErrMalformed is wrapped by every parse error.
var ErrMalformed = errors.New("malformed input")

// RowError reports a bad value; Row and Col are 1-based (0 = not
// applicable).
type RowError struct {
	Row, Col int
	Msg      string
}

func (e *RowError) Error() string {
	switch {
	case e.Row > 0 && e.Col > 0:
		return fmt.Sprintf("row %d, column %d: %s", e.Row, e.Col, e.Msg)
	case e.Row > 0:
		return fmt.Sprintf("row %d: %s", e.Row, e.Msg)
	}
	return e.Msg
}

// Unwrap makes errors.Is(err, ErrMalformed) true.
func (e *RowError) Unwrap() error { return ErrMalformed }

func rowErr(row, col int, format string, args ...any) error {
	return &RowError{Row: row, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// Options control parsing.
type Options struct {
	// Width, when > 0, fixes the number of columns of the result: rows with
	// fewer values are padded with NaN (missing), and a value beyond Width
	// is an error. When 0 the first row decides.
	Width int
	// MaxRows, when > 0, bounds the number of rows accepted.
	MaxRows int
	// MaxValues, when > 0, bounds Rows×Cols of a Parquet result, whose
	// compressed pages can describe many values in few bytes. When 0,
	// ParseParquet allows 4 values per body byte (plus 64 Ki).
	MaxValues int64
}

func nan() float32 { return float32(math.NaN()) }

func fillNaN(s []float32) {
	n := nan()
	for i := range s {
		s[i] = n
	}
}

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}
