package tabular

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/encoding/thrift"
	"github.com/parquet-go/parquet-go/format"
)

// Parquet limits. A Parquet body is untrusted: its footer and page headers
// carry counts and sizes that a decoder would allocate for, and its pages
// may be compressed, so a small body can describe a huge table. ParseParquet
// checks every such number against these bounds before the library reads
// the file, so memory stays proportional to the body and the result.
const (
	// parquetValuesPerByte bounds the result to this many values per body
	// byte (plus parquetMinValues) unless Options.MaxValues says otherwise:
	// random doubles take 8 bytes each, so this allows 32× compression.
	parquetValuesPerByte = 4
	parquetMinValues     = 1 << 16
	// parquetMaxFooter bounds the footer; an inference request has no use
	// for hundreds of thousands of column chunks.
	parquetMaxFooter = 16 << 20
	// parquetListBudget and parquetListBytesPerByte bound what the thrift
	// decoder allocates up front for the lists of the footer (schema
	// entries, row groups, column chunks, …): at most this many bytes plus
	// that many per footer byte. Legitimate footers cost about 12 bytes of
	// decoded lists per encoded byte; a list of empty structs costs 560.
	parquetListBudget       = 16 << 20
	parquetListBytesPerByte = 32
	// parquetMaxNesting bounds thrift struct nesting.
	parquetMaxNesting = 16
)

var parquetMagic = []byte("PAR1")

// parquetColumn is one feature column of a flat schema.
type parquetColumn struct {
	name     string
	kind     format.Type
	unsigned bool
}

// ParseParquet parses application/x-parquet: a Parquet file whose columns
// are all numeric (INT32, INT64, FLOAT, DOUBLE, plain or with an integer
// logical type), required or optional. Every column is a feature, in schema
// order, and every row one input row; a null is a missing value (NaN), as
// XGBoost treats missing values. There is no label column, as for CSV.
//
// The file is read page by page straight into the matrix; nothing but the
// matrix and the page being decoded is held in memory. Codecs UNCOMPRESSED,
// SNAPPY, GZIP and ZSTD are read (what pandas, pyarrow and Spark write).
func ParseParquet(body []byte, opt Options) (m *Matrix, err error) {
	// Should the parquet library panic on a file that passes the checks
	// below, that is one bad request, not a reason to take the server down.
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, rowErr(0, 0, "corrupt Parquet file: %v", r)
		}
	}()
	meta, cols, err := checkParquetFooter(body)
	if err != nil {
		return nil, err
	}
	width := opt.Width
	if width == 0 {
		width = len(cols)
	}
	if len(cols) > width {
		hint := ""
		if len(cols) == width+1 {
			// SageMaker's training files have the label first.
			hint = " (inference input has no label column: drop the first column of a training file)"
		}
		return nil, rowErr(0, len(cols), "too many columns: the file has %d, the model takes %d features%s", len(cols), width, hint)
	}
	var rows int64
	for i, rg := range meta.RowGroups {
		if rg.NumRows < 0 || len(rg.Columns) != len(cols) {
			return nil, rowErr(0, 0, "corrupt Parquet file: row group %d is inconsistent with the schema", i)
		}
		rows += rg.NumRows
		if rows > math.MaxInt32 {
			return nil, rowErr(0, 0, "too many rows")
		}
	}
	if opt.MaxRows > 0 && rows > int64(opt.MaxRows) {
		return nil, rowErr(int(opt.MaxRows)+1, 0, "too many rows (limit %d)", opt.MaxRows)
	}
	maxValues := opt.MaxValues
	if maxValues <= 0 {
		maxValues = parquetValuesPerByte*int64(len(body)) + parquetMinValues
	}
	if rows*int64(width) > maxValues {
		return nil, rowErr(0, 0, "the file describes %d rows × %d columns, more than the %d values a body of %d bytes may hold",
			rows, width, maxValues, len(body))
	}
	if err := checkParquetPages(body, meta); err != nil {
		return nil, err
	}

	f, err := parquet.OpenFile(bytes.NewReader(body), int64(len(body)),
		parquet.SkipPageIndex(true), parquet.SkipBloomFilters(true), parquet.ReadBufferSize(64<<10))
	if err != nil {
		return nil, rowErr(0, 0, "corrupt Parquet file: %v", err)
	}
	if n := len(f.Root().Columns()); n != len(cols) || len(f.RowGroups()) != len(meta.RowGroups) {
		return nil, rowErr(0, 0, "corrupt Parquet file: %d columns in the schema, %d read", len(cols), n)
	}
	m = &Matrix{Rows: int(rows), Cols: width, Data: make([]float32, int(rows)*width)}
	if width > len(cols) {
		for r := 0; r < m.Rows; r++ {
			fillNaN(m.Row(r)[len(cols):])
		}
	}
	buf := make([]parquet.Value, 1024)
	base := 0
	for g, rg := range f.RowGroups() {
		n := int(meta.RowGroups[g].NumRows)
		for c, chunk := range rg.ColumnChunks() {
			if err := readParquetColumn(chunk, cols[c], m, base, n, c, buf); err != nil {
				return nil, err
			}
		}
		base += n
	}
	return m, nil
}

// readParquetColumn writes column c of one row group (rows base..base+n)
// into m, one page at a time.
func readParquetColumn(chunk parquet.ColumnChunk, col parquetColumn, m *Matrix, base, n, c int, buf []parquet.Value) error {
	pages := chunk.Pages()
	defer pages.Close()
	r := 0
	for {
		page, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return rowErr(base+r+1, c+1, "corrupt Parquet column %q: %v", col.name, err)
		}
		values := page.Values()
		for {
			k, err := values.ReadValues(buf)
			for _, v := range buf[:k] {
				if r >= n {
					parquet.Release(page)
					return rowErr(base+r+1, c+1, "corrupt Parquet column %q: more values than the row group's %d rows", col.name, n)
				}
				m.Data[(base+r)*m.Cols+c] = parquetFloat(v, col)
				r++
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				parquet.Release(page)
				return rowErr(base+r+1, c+1, "corrupt Parquet column %q: %v", col.name, err)
			}
		}
		parquet.Release(page)
	}
	if r != n {
		return rowErr(base+r+1, c+1, "corrupt Parquet column %q: %d values for %d rows", col.name, r, n)
	}
	return nil
}

// parquetFloat converts a value as numpy's astype(float32) would: integers
// and doubles are rounded to the nearest float32.
func parquetFloat(v parquet.Value, col parquetColumn) float32 {
	if v.IsNull() {
		return nan()
	}
	switch col.kind {
	case format.Int32:
		if col.unsigned {
			return float32(v.Uint32())
		}
		return float32(v.Int32())
	case format.Int64:
		if col.unsigned {
			return float32(v.Uint64())
		}
		return float32(v.Int64())
	case format.Float:
		return v.Float()
	default:
		return float32(v.Double())
	}
}

// checkParquetFooter validates the magic numbers and the footer's thrift
// encoding, decodes the footer and checks the schema: flat, numeric.
func checkParquetFooter(body []byte) (*format.FileMetaData, []parquetColumn, error) {
	if len(body) < 12 || !bytes.Equal(body[:4], parquetMagic) || !bytes.Equal(body[len(body)-4:], parquetMagic) {
		return nil, nil, rowErr(0, 0, "not a Parquet file (no PAR1 magic at both ends; encrypted files are not supported)")
	}
	size := int64(binary.LittleEndian.Uint32(body[len(body)-8:]))
	if size > int64(len(body)-12) {
		return nil, nil, rowErr(0, 0, "corrupt Parquet file: footer length %d past the file", size)
	}
	if size > parquetMaxFooter {
		return nil, nil, rowErr(0, 0, "Parquet footer of %d bytes is too large (limit %d)", size, parquetMaxFooter)
	}
	footer := body[len(body)-8-int(size) : len(body)-8]
	w := thriftWalker{b: footer, sizes: footerItemSizes}
	if err := w.walkStruct(0); err != nil {
		return nil, nil, rowErr(0, 0, "corrupt Parquet footer: %v", err)
	}
	meta := new(format.FileMetaData)
	if err := thrift.Unmarshal(new(thrift.CompactProtocol), footer, meta); err != nil {
		return nil, nil, rowErr(0, 0, "corrupt Parquet footer: %v", err)
	}
	if len(meta.Schema) < 2 || meta.Schema[0].NumChildren.V != int32(len(meta.Schema)-1) {
		if len(meta.Schema) == 1 {
			return nil, nil, rowErr(0, 0, "the Parquet file has no columns")
		}
		return nil, nil, rowErr(0, 0, "only flat Parquet schemas are supported: every column a number at the top level")
	}
	cols := make([]parquetColumn, 0, len(meta.Schema)-1)
	for i, el := range meta.Schema[1:] {
		col, err := numericColumn(&el)
		if err != nil {
			return nil, nil, rowErr(0, i+1, "column %q: %v", clip([]byte(el.Name)), err)
		}
		cols = append(cols, col)
	}
	return meta, cols, nil
}

// numericColumn accepts a required or optional INT32, INT64, FLOAT or
// DOUBLE leaf whose logical type, if any, is an integer.
func numericColumn(el *format.SchemaElement) (parquetColumn, error) {
	col := parquetColumn{name: el.Name}
	if el.NumChildren.Valid && el.NumChildren.V > 0 || !el.Type.Valid {
		return col, errors.New("nested columns are not supported; features must be numbers")
	}
	if el.RepetitionType.Valid && el.RepetitionType.V == format.Repeated {
		return col, errors.New("repeated columns are not supported; features must be numbers")
	}
	col.kind = el.Type.V
	switch col.kind {
	case format.Int32, format.Int64, format.Float, format.Double:
	default:
		return col, fmt.Errorf("type %s is not numeric; features must be INT32, INT64, FLOAT or DOUBLE", col.kind)
	}
	switch lt := el.LogicalType.Value.(type) {
	case nil:
	case *format.IntType:
		col.unsigned = !lt.IsSigned
		return col, nil
	default:
		return col, fmt.Errorf("logical type %s is not a plain number", lt)
	}
	if el.ConvertedType.Valid {
		switch ct := el.ConvertedType.V; ct {
		case deprecated.Int8, deprecated.Int16, deprecated.Int32, deprecated.Int64:
		case deprecated.Uint8, deprecated.Uint16, deprecated.Uint32, deprecated.Uint64:
			col.unsigned = true
		default:
			return col, fmt.Errorf("converted type %d is not a plain number", ct)
		}
	}
	return col, nil
}

// checkParquetPages walks the page headers of every column chunk, as the
// library will read them, and bounds what decoding each page allocates:
// value counts by the row group's rows, sizes by the values they hold, and
// the decompressed length of each page by its declared size.
func checkParquetPages(body []byte, meta *format.FileMetaData) error {
	for g, rg := range meta.RowGroups {
		for c := range rg.Columns {
			md := &rg.Columns[c].MetaData
			if err := checkParquetChunk(body, md, rg.NumRows); err != nil {
				return rowErr(0, c+1, "corrupt Parquet file: row group %d, column %d: %v", g, c+1, err)
			}
		}
	}
	return nil
}

func checkParquetChunk(body []byte, md *format.ColumnMetaData, rows int64) error {
	switch md.Codec {
	case format.Uncompressed, format.Snappy, format.Gzip, format.Zstd:
	default:
		return fmt.Errorf("compression codec %s is not supported (use SNAPPY, GZIP, ZSTD or none)", md.Codec)
	}
	start := md.DataPageOffset
	if md.DictionaryPageOffset != 0 {
		start = md.DictionaryPageOffset
	}
	if start < 0 || start > int64(len(body)) || md.TotalCompressedSize < 0 {
		return fmt.Errorf("column chunk offset %d out of the file", start)
	}
	end := min(int64(len(body)), start+md.TotalCompressedSize)
	sec := body[start:end]
	var values int64
	for len(sec) > 0 {
		w := thriftWalker{b: sec}
		if err := w.walkStruct(0); err != nil {
			// The library stops at a header it cannot read too.
			return fmt.Errorf("page header: %w", err)
		}
		var h format.PageHeader
		if err := thrift.Unmarshal(new(thrift.CompactProtocol), sec[:w.off], &h); err != nil {
			return fmt.Errorf("page header: %w", err)
		}
		sec = sec[w.off:]
		if h.CompressedPageSize < 0 || int64(h.CompressedPageSize) > int64(len(sec)) {
			return fmt.Errorf("page of %d bytes past the column chunk", h.CompressedPageSize)
		}
		data := sec[:h.CompressedPageSize]
		sec = sec[h.CompressedPageSize:]
		var n, levels int64
		compressed := md.Codec != format.Uncompressed
		switch {
		case h.DataPageHeader.Valid:
			n = int64(h.DataPageHeader.V.NumValues)
		case h.DataPageHeaderV2.Valid:
			v := h.DataPageHeaderV2.V
			n = int64(v.NumValues)
			levels = int64(v.RepetitionLevelsByteLength) + int64(v.DefinitionLevelsByteLength)
			if levels < 0 || levels > int64(len(data)) {
				return errors.New("page levels past the page")
			}
			data = data[levels:]
			compressed = compressed && (!v.IsCompressed.Valid || v.IsCompressed.V)
		case h.DictionaryPageHeader.Valid:
			n = int64(h.DictionaryPageHeader.V.NumValues)
		default:
			continue // index pages and the like are skipped unread
		}
		if n < 0 || n > rows {
			return fmt.Errorf("page of %d values in a row group of %d rows", n, rows)
		}
		if !h.DictionaryPageHeader.Valid {
			values += n
			if values > rows {
				return fmt.Errorf("%d values in a row group of %d rows", values, rows)
			}
		}
		// A page holds at most 8 bytes per value plus its levels.
		limit := 16*n + levels + 4096
		if int64(h.UncompressedPageSize) > limit {
			return fmt.Errorf("page of %d values claims %d bytes", n, h.UncompressedPageSize)
		}
		if compressed {
			if err := checkDecodedLen(md.Codec, data, int64(h.UncompressedPageSize)-levels); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkDecodedLen makes sure a compressed page decodes to at most limit
// bytes, without keeping the output: the codecs grow their output to
// whatever the stream holds.
func checkDecodedLen(codec format.CompressionCodec, data []byte, limit int64) error {
	var n int64
	switch codec {
	case format.Snappy:
		l, err := snappy.DecodedLen(data)
		if err != nil {
			return fmt.Errorf("snappy page: %w", err)
		}
		n = int64(l)
	case format.Gzip:
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("gzip page: %w", err)
		}
		n, err = io.Copy(io.Discard, io.LimitReader(zr, limit+1))
		if err != nil {
			return fmt.Errorf("gzip page: %w", err)
		}
	case format.Zstd:
		// The window bounds the decoder's own memory; a page needs no more
		// window than its declared size.
		zr, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxWindow(uint64(min(max(limit, 1<<20), 1<<30))))
		if err != nil {
			return fmt.Errorf("zstd page: %w", err)
		}
		defer zr.Close()
		n, err = io.Copy(io.Discard, io.LimitReader(zr, limit+1))
		if err != nil {
			return fmt.Errorf("zstd page: %w", err)
		}
	}
	if n > limit {
		return fmt.Errorf("page decompresses past its declared %d bytes", limit)
	}
	return nil
}

// thriftWalker checks one thrift compact-protocol struct without decoding
// it: every length and count must fit in the bytes that are left, nesting
// is bounded, and so is what the decoder will allocate for lists, which it
// sizes from their counts before reading an item. After it passes, the
// library's decoder allocates nothing the input cannot back.
type thriftWalker struct {
	b   []byte
	off int
	// sizes gives the decoded size of a list item by the field path that
	// leads to the list (nil: every item costs maxItemSize).
	sizes map[string]int
	path  []byte // field ids from the top struct, one byte each (ids < 256)
	cost  int64  // estimated bytes the decoder allocates for lists
}

// maxItemSize is the largest decoded list item of the Parquet footer
// (format.ColumnChunk, 560 bytes on 64-bit platforms).
const maxItemSize = 560

// footerItemSizes are the decoded sizes of the struct items of the
// FileMetaData lists, by field path: schema, row_groups, their columns and
// sorting_columns, encoding_stats, key_value_metadata, column_orders.
var footerItemSizes = map[string]int{
	"\x02":             96,
	"\x04":             88,
	"\x04\x01":         maxItemSize,
	"\x04\x04":         8,
	"\x04\x01\x03\x0d": 12,
	"\x05":             32,
	"\x07":             16,
}

func (w *thriftWalker) itemSize(t byte) int {
	switch t {
	case 12: // struct
		if n, ok := w.sizes[string(w.path)]; ok {
			return n
		}
		return maxItemSize
	case 1, 2, 3:
		return 1
	}
	return 24 // numbers, strings, byte slices, nested lists
}

var errThrift = errors.New("malformed thrift")

func (w *thriftWalker) byte1() (byte, error) {
	if w.off >= len(w.b) {
		return 0, io.ErrUnexpectedEOF
	}
	c := w.b[w.off]
	w.off++
	return c, nil
}

func (w *thriftWalker) uvarint() (uint64, error) {
	v, n := binary.Uvarint(w.b[w.off:])
	if n <= 0 {
		return 0, errThrift
	}
	w.off += n
	return v, nil
}

func (w *thriftWalker) skip(n uint64) error {
	if n > uint64(len(w.b)-w.off) {
		return io.ErrUnexpectedEOF
	}
	w.off += int(n)
	return nil
}

func (w *thriftWalker) walkStruct(depth int) error {
	if depth > parquetMaxNesting {
		return fmt.Errorf("%w: nesting deeper than %d", errThrift, parquetMaxNesting)
	}
	var id int64
	for {
		h, err := w.byte1()
		if err != nil {
			return err
		}
		if h == 0 {
			return nil
		}
		if d := h >> 4; d != 0 {
			id += int64(d)
		} else { // long form: the field id follows as a zigzag varint
			v, err := w.uvarint()
			if err != nil {
				return err
			}
			id = int64(v>>1) ^ -int64(v&1)
		}
		w.path = append(w.path, byte(id))
		err = w.walkValue(h&0x0f, depth, false)
		w.path = w.path[:len(w.path)-1]
		if err != nil {
			return err
		}
	}
}

// walkValue skips one value of compact type t; inList says booleans take
// a byte (in a struct field they live in the type nibble).
func (w *thriftWalker) walkValue(t byte, depth int, inList bool) error {
	switch t {
	case 1, 2: // BOOLEAN_TRUE, BOOLEAN_FALSE
		if inList {
			return w.skip(1)
		}
		return nil
	case 3: // BYTE
		return w.skip(1)
	case 4, 5, 6: // I16, I32, I64
		_, err := w.uvarint()
		return err
	case 7: // DOUBLE
		return w.skip(8)
	case 8: // BINARY
		n, err := w.uvarint()
		if err != nil {
			return err
		}
		return w.skip(n)
	case 9, 10: // LIST, SET
		h, err := w.byte1()
		if err != nil {
			return err
		}
		n := uint64(h >> 4)
		if n == 15 {
			if n, err = w.uvarint(); err != nil {
				return err
			}
		}
		return w.walkItems(n, []byte{h & 0x0f}, depth)
	case 11: // MAP
		n, err := w.uvarint()
		if err != nil || n == 0 {
			return err
		}
		kv, err := w.byte1()
		if err != nil {
			return err
		}
		return w.walkItems(n, []byte{kv >> 4, kv & 0x0f}, depth)
	case 12: // STRUCT
		return w.walkStruct(depth + 1)
	}
	return fmt.Errorf("%w: unknown type %d", errThrift, t)
}

func (w *thriftWalker) walkItems(n uint64, types []byte, depth int) error {
	// Every item takes at least one byte, and the decoder allocates all of
	// them before reading the first.
	if n > uint64(len(w.b)-w.off) {
		return io.ErrUnexpectedEOF
	}
	for _, t := range types {
		w.cost += int64(n) * int64(w.itemSize(t))
	}
	if limit := parquetListBudget + parquetListBytesPerByte*int64(len(w.b)); w.cost > limit {
		return fmt.Errorf("%w: lists would take %d bytes to decode (limit %d)", errThrift, w.cost, limit)
	}
	for i := uint64(0); i < n; i++ {
		for _, t := range types {
			if err := w.walkValue(t, depth+1, true); err != nil {
				return err
			}
		}
	}
	return nil
}
