package tabular

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestParseNumber(t *testing.T) {
	cases := map[string]float64{
		"1": 1, "-2.5": -2.5, " 3.25 ": 3.25, "1e3": 1000, "1E-2": 0.01, ".5": 0.5, "5.": 5,
		"+7": 7, "0.000123": 0.000123, "123456789012345678901234": 123456789012345678901234,
		"1e400": math.Inf(1), "-inf": math.Inf(-1), "Infinity": math.Inf(1), "0.1\r": 0.1,
		"3.4028235677973366e+38": 3.4028235677973366e+38, "1e-50": 1e-50,
	}
	for in, want := range cases {
		got, ok := ParseNumber([]byte(in))
		if !ok || got != float32(want) {
			t.Errorf("ParseNumber(%q) = %v, %v; want %v", in, got, ok, float32(want))
		}
	}
	for _, in := range []string{"nan", "NaN", "-nan"} {
		if got, ok := ParseNumber([]byte(in)); !ok || !math.IsNaN(float64(got)) {
			t.Errorf("ParseNumber(%q) = %v, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "x", "1,2", "0x10", "1_000", "--1", "1e", ".", "1.2.3", "e5"} {
		if _, ok := ParseNumber([]byte(in)); ok {
			t.Errorf("ParseNumber(%q) accepted", in)
		}
	}
}

func TestParseCSV(t *testing.T) {
	m, err := ParseCSV([]byte("1,,3\r\n\n4,5,6\n"), Options{Width: 4})
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != 2 || m.Cols != 4 || m.Data[0] != 1 || !isNaN(m.Data[1]) || !isNaN(m.Data[3]) || m.Data[6] != 6 {
		t.Fatalf("%+v", m)
	}
	m, err = ParseCSV([]byte("1\t2\n3\t4"), Options{})
	if err != nil || m.Rows != 2 || m.Cols != 2 || m.Data[3] != 4 {
		t.Fatalf("tab delimited: %+v %v", m, err)
	}
	_, err = ParseCSV([]byte("1,2\n3,4\n5,6"), Options{MaxRows: 2})
	var re *RowError
	if !errors.As(err, &re) || re.Row != 3 || !errors.Is(err, ErrMalformed) {
		t.Fatalf("max rows: %v", err)
	}
}

func TestParseLibSVM(t *testing.T) {
	m, err := ParseLibSVM([]byte("1 qid:3 0:1.5 2:-1\n0\n0 3:0"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != 3 || m.Cols != 4 || m.Data[0] != 1.5 || !isNaN(m.Data[1]) || m.Data[2] != -1 ||
		!isNaN(m.Data[4]) || m.Data[11] != 0 {
		t.Fatalf("%+v", m)
	}
}

func TestParseJSONShapes(t *testing.T) {
	for _, body := range []string{
		`{"instances": [{"features": [1, null, 3]}, {"features": [4, 5, 6]}]}`,
		`{"instances": [[1, null, 3], [4, 5, 6]]}`,
		`[[1, null, 3], [4, 5, "6"]]`,
	} {
		m, err := ParseJSON([]byte(body), Options{})
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if m.Rows != 2 || m.Cols != 3 || !isNaN(m.Data[1]) || m.Data[5] != 6 {
			t.Fatalf("%s: %+v", body, m)
		}
	}
	for _, body := range []string{`{"features": [1, 2]}`, `[1, 2]`} {
		m, err := ParseJSON([]byte(body), Options{Width: 3})
		if err != nil || m.Rows != 1 || m.Cols != 3 || m.Data[1] != 2 || !isNaN(m.Data[2]) {
			t.Fatalf("%s: %+v %v", body, m, err)
		}
	}
	m, err := ParseJSONLines([]byte("{\"features\": [1, 2]}\n\n[3, 4]\n"), Options{})
	if err != nil || m.Rows != 2 || m.Data[2] != 3 {
		t.Fatalf("jsonlines: %+v %v", m, err)
	}
}

func isNaN(f float32) bool { return f != f }

func checkMatrix(t *testing.T, m *Matrix, err error, opt Options) {
	t.Helper()
	if err != nil {
		var re *RowError
		if !errors.As(err, &re) {
			t.Fatalf("error %v is not a *RowError", err)
		}
		return
	}
	if len(m.Data) != m.Rows*m.Cols {
		t.Fatalf("matrix %dx%d has %d values", m.Rows, m.Cols, len(m.Data))
	}
	if opt.Width > 0 && m.Cols != opt.Width {
		t.Fatalf("width %d, want %d", m.Cols, opt.Width)
	}
}

var seeds = []string{
	"1,2,3\n4,5,6\n", "1,,3\n,,\n", "1\t2\n", "a,b", "0 1:2 3:4\n1 qid:1 0:1", "1e309,-inf,nan",
	`{"instances": [{"features": [1, null]}]}`, `[[1,2],[3]]`, `[1,2]`, "{\"features\": [1]}\n[2]\n",
	"", "\n\n", "1,2\r\n3,4\r\n", "0 99999999999:1", "0 :1", "0 1:",
}

func FuzzParseCSV(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s), 0)
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, b []byte, width int) {
		opt := Options{Width: width & 63, MaxRows: 1000}
		m, err := ParseCSV(b, opt)
		checkMatrix(t, m, err, opt)
	})
}

func FuzzParseLibSVM(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s), 0)
		f.Add([]byte(s), 5)
	}
	f.Fuzz(func(t *testing.T, b []byte, width int) {
		opt := Options{Width: width & 63, MaxRows: 1000}
		m, err := ParseLibSVM(b, opt)
		checkMatrix(t, m, err, opt)
	})
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s), 0)
		f.Add([]byte(s), 2)
	}
	f.Fuzz(func(t *testing.T, b []byte, width int) {
		opt := Options{Width: width & 63, MaxRows: 1000}
		m, err := ParseJSON(b, opt)
		checkMatrix(t, m, err, opt)
		m, err = ParseJSONLines(b, opt)
		checkMatrix(t, m, err, opt)
	})
}

// FuzzParseNumber checks the allocation-free parser against strconv (Python
// float() semantics aside: both must agree whenever strconv accepts a plain
// decimal).
func FuzzParseNumber(f *testing.F) {
	for _, s := range []string{"1", "-0.5", "1e10", "123456789.123456789", "0.1", "1e-30", "9007199254740993"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseNumber([]byte(s))
		if strings.ContainsAny(s, "_xXpPiInN \t\r") {
			return
		}
		want, err := strconv.ParseFloat(s, 64)
		if err != nil {
			if ok && !errors.Is(err, strconv.ErrRange) {
				t.Fatalf("ParseNumber(%q) accepted what strconv rejects: %v", s, err)
			}
			return
		}
		if !ok || got != float32(want) {
			t.Fatalf("ParseNumber(%q) = %v, %v; strconv gives %v", s, got, ok, float32(want))
		}
	})
}
