// Command genparquet writes rows.parquet beside rows.csv for a few fixture
// cases: the same rows as a Parquet file of optional DOUBLE columns, an
// empty CSV field becoming a null. No Debian package writes Parquet, so the
// files are written with parquet-go; check_parquet.py reads one back by the
// format specification alone.
//
// Run from internal/modelserver/xgboost: go generate (see doc.go).
package main

import (
	"bytes"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
)

// cases and how each is written, so the fixtures cover compression,
// several row groups and pages, and both data page versions.
var cases = []struct {
	dir     string
	options []parquet.WriterOption
}{
	// Plain and uncompressed: the one check_parquet.py decodes by hand.
	{"multi_softprob", []parquet.WriterOption{parquet.Compression(&parquet.Uncompressed), parquet.DataPageVersion(1)}},
	{"binary_logistic", []parquet.WriterOption{parquet.Compression(&parquet.Snappy), parquet.MaxRowsPerRowGroup(25), parquet.PageBufferSize(128)}},
	{"reg_squarederror", []parquet.WriterOption{parquet.Compression(&parquet.Zstd), parquet.DataPageVersion(2)}},
}

func main() {
	for _, c := range cases {
		if err := write(filepath.Join("testdata", c.dir), c.options); err != nil {
			log.Fatalf("%s: %v", c.dir, err)
		}
	}
}

func write(dir string, options []parquet.WriterOption) error {
	raw, err := os.ReadFile(filepath.Join(dir, "rows.csv"))
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	width := strings.Count(lines[0], ",") + 1
	group := parquet.Group{}
	for i := 0; i < width; i++ {
		// Zero-padded names: a Group's columns are in name order.
		group[fmt.Sprintf("f%03d", i)] = parquet.Optional(parquet.Leaf(parquet.DoubleType))
	}
	schema := parquet.NewSchema("rows", group)
	var buf bytes.Buffer
	w := parquet.NewWriter(&buf, append([]parquet.WriterOption{schema, parquet.CreatedBy("berth genparquet", "1", "")}, options...)...)
	for n, line := range lines {
		fields := strings.Split(line, ",")
		if len(fields) != width {
			return fmt.Errorf("line %d: %d fields, want %d", n+1, len(fields), width)
		}
		row := make(parquet.Row, width)
		for i, f := range fields {
			if f == "" {
				row[i] = parquet.NullValue().Level(0, 0, i)
				continue
			}
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				return fmt.Errorf("line %d: %w", n+1, err)
			}
			row[i] = parquet.ValueOf(v).Level(0, 1, i)
		}
		if _, err := w.WriteRows([]parquet.Row{row}); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "rows.parquet"), buf.Bytes(), 0o644)
}
