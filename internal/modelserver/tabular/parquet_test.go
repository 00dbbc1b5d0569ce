package tabular

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// writeParquet writes rows under a schema of the given columns (a Group
// orders its columns by name).
func writeParquet(t testing.TB, group parquet.Group, rows []parquet.Row, opts ...parquet.WriterOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, append([]parquet.WriterOption{parquet.NewSchema("t", group)}, opts...)...)
	if _, err := w.WriteRows(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func val(v any, def, col int) parquet.Value { return parquet.ValueOf(v).Level(0, def, col) }
func null(col int) parquet.Value            { return parquet.NullValue().Level(0, 0, col) }

func sameFloats(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) && !(a[i] != a[i] && b[i] != b[i]) {
			return false
		}
	}
	return true
}

func TestParquetNumericTypes(t *testing.T) {
	group := parquet.Group{
		"a_i32":  parquet.Leaf(parquet.Int32Type),
		"b_i64":  parquet.Optional(parquet.Leaf(parquet.Int64Type)),
		"c_f32":  parquet.Leaf(parquet.FloatType),
		"d_f64":  parquet.Optional(parquet.Leaf(parquet.DoubleType)),
		"e_u32":  parquet.Uint(32),
		"f_u64":  parquet.Optional(parquet.Uint(64)),
		"g_int8": parquet.Int(8),
	}
	rows := []parquet.Row{
		{val(int32(-7), 0, 0), val(int64(1)<<40, 1, 1), val(float32(1.5), 0, 2), val(0.1, 1, 3), val(uint32(4000000000), 0, 4), val(uint64(1)<<63, 1, 5), val(int32(-128), 0, 6)},
		{val(int32(3), 0, 0), null(1), val(float32(math.Inf(-1)), 0, 2), null(3), val(uint32(0), 0, 4), null(5), val(int32(127), 0, 6)},
	}
	want := []float32{-7, 1 << 40, 1.5, float32(0.1), 4e9, 1 << 63, -128,
		3, nan(), float32(math.Inf(-1)), nan(), 0, nan(), 127}
	for _, codec := range []parquet.WriterOption{
		parquet.Compression(&parquet.Uncompressed),
		parquet.Compression(&parquet.Snappy),
		parquet.Compression(&parquet.Gzip),
		parquet.Compression(&parquet.Zstd),
	} {
		for _, version := range []int{1, 2} {
			body := writeParquet(t, group, rows, codec, parquet.DataPageVersion(version))
			m, err := ParseParquet(body, Options{})
			if err != nil {
				t.Fatalf("%v v%d: %v", codec, version, err)
			}
			if m.Rows != 2 || m.Cols != 7 || !sameFloats(m.Data, want) {
				t.Fatalf("%v v%d: got %d×%d %v, want %v", codec, version, m.Rows, m.Cols, m.Data, want)
			}
		}
	}
}

// TestParquetManyPages: several row groups and pages, in row order.
func TestParquetManyPages(t *testing.T) {
	group := parquet.Group{"x": parquet.Optional(parquet.Leaf(parquet.DoubleType)), "y": parquet.Leaf(parquet.Int64Type)}
	var rows []parquet.Row
	var want []float32
	for i := 0; i < 1000; i++ {
		x := val(float64(i)/3, 1, 0)
		wx := float32(float64(i) / 3)
		if i%7 == 0 {
			x, wx = null(0), nan()
		}
		rows = append(rows, parquet.Row{x, val(int64(-i), 0, 1)})
		want = append(want, wx, float32(-i))
	}
	body := writeParquet(t, group, rows, parquet.MaxRowsPerRowGroup(300), parquet.PageBufferSize(256), parquet.Compression(&parquet.Snappy))
	m, err := ParseParquet(body, Options{Width: 3})
	if err != nil {
		t.Fatal(err)
	}
	if m.Rows != 1000 || m.Cols != 3 {
		t.Fatalf("%d×%d", m.Rows, m.Cols)
	}
	for r := 0; r < m.Rows; r++ {
		row := m.Row(r)
		if !sameFloats(row[:2], want[2*r:2*r+2]) || row[2] == row[2] {
			t.Fatalf("row %d = %v, want %v NaN", r, row, want[2*r:2*r+2])
		}
	}
}

func TestParquetRejects(t *testing.T) {
	double := parquet.Leaf(parquet.DoubleType)
	one := []parquet.Row{{val(1.0, 0, 0)}}
	cases := []struct {
		name string
		body []byte
		opt  Options
		want string
	}{
		{"string column", writeParquet(t, parquet.Group{"s": parquet.String()}, []parquet.Row{{val("x", 0, 0)}}), Options{}, `column "s": type BYTE_ARRAY is not numeric`},
		{"boolean column", writeParquet(t, parquet.Group{"b": parquet.Leaf(parquet.BooleanType)}, []parquet.Row{{val(true, 0, 0)}}), Options{}, "is not numeric"},
		{"date column", writeParquet(t, parquet.Group{"d": parquet.Date()}, []parquet.Row{{val(int32(1), 0, 0)}}), Options{}, "logical type DATE is not a plain number"},
		{"decimal column", writeParquet(t, parquet.Group{"d": parquet.Decimal(2, 9, parquet.Int32Type)}, []parquet.Row{{val(int32(1), 0, 0)}}), Options{}, "is not a plain number"},
		{"nested column", writeParquet(t, parquet.Group{"g": parquet.Group{"x": double}}, one), Options{}, "only flat Parquet schemas"},
		{"repeated column", writeParquet(t, parquet.Group{"r": parquet.Repeated(double)}, nil), Options{}, "repeated columns are not supported"},
		{"too many columns", writeParquet(t, parquet.Group{"a": double, "b": double}, []parquet.Row{{val(1.0, 0, 0), val(2.0, 0, 1)}}), Options{Width: 1}, "too many columns: the file has 2, the model takes 1 features (inference input has no label column"},
		{"too many rows", writeParquet(t, parquet.Group{"a": double}, []parquet.Row{{val(1.0, 0, 0)}, {val(2.0, 0, 0)}}), Options{MaxRows: 1}, "too many rows"},
		{"empty body", nil, Options{}, "not a Parquet file"},
		{"csv body", []byte("1,2,3\n4,5,6\n"), Options{}, "not a Parquet file"},
		{"footer past the file", []byte("PAR1\xff\xff\x00\x00PAR1"), Options{}, "footer length"},
		{"empty footer", []byte("PAR1\x00\x00\x00\x00PAR1"), Options{}, "corrupt Parquet footer"},
		{"encrypted", []byte("PAR1\x00\x00\x00\x00PARE"), Options{}, "encrypted files are not supported"},
		{"footer of empty column chunks", emptyChunksFile(200_000), Options{}, "lists would take"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseParquet(tc.body, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%v does not wrap ErrMalformed", err)
			}
		})
	}
}

// emptyChunksFile is a file whose footer has one row group of n empty
// column chunks: n bytes that the decoder would turn into n×560.
func emptyChunksFile(n int) []byte {
	footer := []byte{0x49, 0x1c, 0x19, 0xfc} // row_groups: [1]{columns: [n]struct
	footer = binary.AppendUvarint(footer, uint64(n))
	footer = append(footer, make([]byte, n)...) // n empty structs
	footer = append(footer, 0, 0)               // end of row group, of file metadata
	body := append([]byte("PAR1"), footer...)
	body = binary.LittleEndian.AppendUint32(body, uint32(len(footer)))
	return append(body, "PAR1"...)
}

// TestParquetNoRows: a valid file with no rows gives an empty matrix (the
// server answers "payload has no rows").
func TestParquetNoRows(t *testing.T) {
	m, err := ParseParquet(writeParquet(t, parquet.Group{"a": parquet.Leaf(parquet.DoubleType)}, nil), Options{Width: 4})
	if err != nil || m.Rows != 0 || m.Cols != 4 {
		t.Fatalf("%+v, %v", m, err)
	}
}

// TestParquetValueBound: a file of a million nulls is a few hundred bytes
// (the definition levels are one run); it may not make a 4 MB matrix.
func TestParquetValueBound(t *testing.T) {
	rows := make([]parquet.Row, 1<<20)
	for i := range rows {
		rows[i] = parquet.Row{null(0)}
	}
	body := writeParquet(t, parquet.Group{"a": parquet.Optional(parquet.Leaf(parquet.DoubleType))}, rows, parquet.Compression(&parquet.Zstd))
	if len(body) > 64<<10 {
		t.Fatalf("file is %d bytes; the test wants a small one", len(body))
	}
	if _, err := ParseParquet(body, Options{}); err == nil || !strings.Contains(err.Error(), "more than the") {
		t.Fatalf("err = %v", err)
	}
	m, err := ParseParquet(body, Options{MaxValues: 1 << 20})
	if err != nil || m.Rows != 1<<20 {
		t.Fatalf("with MaxValues: %v", err)
	}
}

// TestParquetDecompressionBound: a gzip page that inflates past the size
// its header declares is refused before the codec grows a buffer for it.
func TestParquetDecompressionBound(t *testing.T) {
	rows := make([]parquet.Row, 4096)
	for i := range rows {
		rows[i] = parquet.Row{val(0.0, 0, 0)}
	}
	body := writeParquet(t, parquet.Group{"a": parquet.Leaf(parquet.DoubleType)}, rows,
		parquet.Compression(&parquet.Gzip), parquet.DataPageVersion(1))
	if _, err := ParseParquet(body, Options{}); err != nil {
		t.Fatal(err)
	}
	// Shrink the first data page's uncompressed_page_size in place,
	// keeping its varint length.
	meta, _, err := checkParquetFooter(body)
	if err != nil {
		t.Fatal(err)
	}
	off := meta.RowGroups[0].Columns[0].MetaData.DataPageOffset
	w := thriftWalker{b: body[off:]}
	if err := w.walkStruct(0); err != nil {
		t.Fatal(err)
	}
	var h format.PageHeader
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), body[off:int(off)+w.off], &h); err != nil {
		t.Fatal(err)
	}
	// Field 1 (type) is 2 bytes, then field 2's header byte.
	p := int(off) + 3
	zz, n := binary.Uvarint(body[p:])
	if n <= 0 || zz>>1 != uint64(h.UncompressedPageSize) {
		t.Fatalf("unexpected header layout: % x", body[off:off+8])
	}
	small := uint64(1) << (7 * uint(n-1)) // the smallest value with n varint bytes, zigzag-encoded /2
	var enc [binary.MaxVarintLen64]byte
	if m := binary.PutUvarint(enc[:], small); m != n {
		t.Fatalf("varint length %d, want %d", m, n)
	}
	bad := bytes.Clone(body)
	copy(bad[p:], enc[:n])
	_, err = ParseParquet(bad, Options{})
	if err == nil || !strings.Contains(err.Error(), "decompresses past") {
		t.Fatalf("err = %v", err)
	}
}

func TestThriftWalkerBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"list claiming 2^31 items", []byte{0x19, 0xfc, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00}},
		{"binary past the end", []byte{0x18, 0xff, 0xff, 0x03}},
		{"unterminated", []byte{0x15, 0x02}},
		{"unknown type", []byte{0x1e}},
		{"deep nesting", bytes.Repeat([]byte{0x1c}, 100)},
	} {
		w := thriftWalker{b: tc.b}
		if err := w.walkStruct(0); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	w := thriftWalker{b: []byte{0x15, 0x04, 0x19, 0x25, 0x02, 0x04, 0x00}}
	if err := w.walkStruct(0); err != nil || w.off != 7 {
		t.Fatalf("valid struct: %v at %d", err, w.off)
	}
}

// TestParquetCorruptions: every truncation and many byte flips of a good
// file give a result or an ErrMalformed error, never a panic.
func TestParquetCorruptions(t *testing.T) {
	for _, body := range parquetSeeds(t) {
		for n := 0; n < len(body); n += max(1, len(body)/200) {
			if _, err := ParseParquet(body[:n], Options{}); err == nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("[:%d]: %v", n, err)
			}
		}
		for i := 0; i < len(body); i += 3 {
			c := bytes.Clone(body)
			c[i] ^= 0x5a
			if _, err := ParseParquet(c, Options{}); err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("flip %d: %v", i, err)
			}
		}
	}
}

func parquetSeeds(t testing.TB) [][]byte {
	group := parquet.Group{"a": parquet.Optional(parquet.Leaf(parquet.DoubleType)), "b": parquet.Leaf(parquet.Int32Type)}
	rows := []parquet.Row{{val(1.5, 1, 0), val(int32(2), 0, 1)}, {null(0), val(int32(-3), 0, 1)}, {val(2.5, 1, 0), val(int32(2), 0, 1)}}
	return [][]byte{
		writeParquet(t, group, rows, parquet.Compression(&parquet.Uncompressed)),
		writeParquet(t, group, rows, parquet.Compression(&parquet.Snappy), parquet.DataPageVersion(1)),
		writeParquet(t, group, rows, parquet.Compression(&parquet.Zstd)),
		writeParquet(t, group, rows, parquet.Compression(&parquet.Gzip), parquet.MaxRowsPerRowGroup(2)),
	}
}

func FuzzParseParquet(f *testing.F) {
	for _, b := range parquetSeeds(f) {
		f.Add(b, 0)
		f.Add(b, 3)
	}
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"), 0)
	// The model fixtures: several row groups, pages, codecs.
	fixtures, _ := filepath.Glob(filepath.Join("..", "xgboost", "testdata", "*", "rows.parquet"))
	for _, p := range fixtures {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b, 6)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, width int) {
		width = min(max(width, 0), 64)
		m, err := ParseParquet(body, Options{Width: width})
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		if len(m.Data) != m.Rows*m.Cols || (width > 0 && m.Cols != width) {
			t.Fatalf("matrix %d×%d with %d values", m.Rows, m.Cols, len(m.Data))
		}
		if int64(len(m.Data)) > parquetValuesPerByte*int64(len(body))+parquetMinValues {
			t.Fatalf("%d values from %d bytes", len(m.Data), len(body))
		}
	})
}
