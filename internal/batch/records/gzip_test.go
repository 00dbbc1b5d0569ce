package records

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strings"
	"testing"
)

func gz(t testing.TB, data string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecompress(t *testing.T) {
	big := strings.Repeat("line of text 0123456789\n", 10000)
	flipped := gz(t, big)
	flipped[len(flipped)/2] ^= 0xFF
	badCRC := gz(t, "hello")
	badCRC[len(badCRC)-8] ^= 1 // the CRC-32 in the trailer
	tests := []struct {
		name        string
		compression string
		in          []byte
		want        string
		wantErr     error
	}{
		{"none", CompressionNone, []byte("plain"), "plain", nil},
		{"none by default", "", []byte("plain"), "plain", nil},
		{"gzip", CompressionGzip, gz(t, big), big, nil},
		{"gzip empty content", CompressionGzip, gz(t, ""), "", nil},
		{"gzip members concatenated", CompressionGzip, cat(gz(t, "a\n"), gz(t, "b\n")), "a\nb\n", nil},
		{"gzip empty input", CompressionGzip, nil, "", ErrCorruptGzip},
		{"gzip not gzip", CompressionGzip, []byte("plain text, not gzip"), "", ErrCorruptGzip},
		{"gzip truncated", CompressionGzip, gz(t, big)[:100], "", ErrCorruptGzip},
		{"gzip corrupt data", CompressionGzip, flipped, "", ErrCorruptGzip},
		{"gzip bad checksum", CompressionGzip, badCRC, "", ErrCorruptGzip},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := Decompress(bytes.NewReader(tc.in), tc.compression)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if tc.wantErr == nil {
				if err != nil || string(got) != tc.want {
					t.Fatalf("got %d bytes, err %v; want %d bytes", len(got), err, len(tc.want))
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			var ge *GzipError
			if !errors.As(err, &ge) || ge.Offset != int64(len(got)) {
				t.Fatalf("err = %v (%T), want a *GzipError at offset %d", err, err, len(got))
			}
		})
	}
}

func TestDecompressUnknown(t *testing.T) {
	if _, err := Decompress(strings.NewReader(""), "Zstd"); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
}

// TestGzipThroughReader checks the usual composition: a corrupt gzip
// stream fails the record reader with an error that still says gzip.
func TestGzipThroughReader(t *testing.T) {
	streams := map[string][]byte{
		SplitNone:     []byte("a\nb\nc\n"),
		SplitLine:     []byte("a\nb\nc\n"),
		SplitRecordIO: encode(SplitRecordIO, "a", "b", "c"),
		SplitTFRecord: encode(SplitTFRecord, "a", "b", "c"),
	}
	for split, stream := range streams {
		data := gz(t, string(stream))
		rc, _ := Decompress(bytes.NewReader(data[:len(data)-4]), CompressionGzip)
		rd, _ := NewReader(rc, split, 0)
		var err error
		for err == nil {
			_, err = rd.Next()
		}
		if !errors.Is(err, ErrCorruptGzip) || errors.Is(err, ErrTruncated) {
			t.Errorf("%s: err = %v, want ErrCorruptGzip alone", split, err)
		}
	}
}
