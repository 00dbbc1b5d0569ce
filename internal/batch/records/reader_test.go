package records

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// The framings below are written by hand from the published formats, not
// with the package's own encoders, so that reader and encoder are each
// checked against the specification.

// rioPart frames one RecordIO part: magic, length word (cflag in the upper
// 3 bits), data, zero padding to 4 bytes.
func rioPart(cflag uint32, data string) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 0xCED7230A)
	b = binary.LittleEndian.AppendUint32(b, cflag<<29|uint32(len(data)))
	b = append(b, data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// specMask is TFRecord's mask, written out from the format description.
func specMask(data []byte) uint32 {
	crc := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	return ((crc >> 15) | (crc << 17)) + 0xa282ead8
}

// tfr frames one TFRecord.
func tfr(data string) []byte {
	length := binary.LittleEndian.AppendUint64(nil, uint64(len(data)))
	b := append([]byte{}, length...)
	b = binary.LittleEndian.AppendUint32(b, specMask(length))
	b = append(b, data...)
	return binary.LittleEndian.AppendUint32(b, specMask([]byte(data)))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// magicLE is the RecordIO magic as it appears in a stream.
const magicLE = "\x0a\x23\xd7\xce"

func readAll(t *testing.T, rd Reader) ([]string, error) {
	t.Helper()
	var out []string
	for i := 0; i < 1e6; i++ {
		rec, err := rd.Next()
		if err != nil {
			return out, err
		}
		out = append(out, string(rec))
	}
	t.Fatal("reader did not end")
	return nil, nil
}

func TestReaders(t *testing.T) {
	tests := []struct {
		name  string
		split string
		in    []byte
		max   int64
		want  []string
	}{
		{"none/empty", SplitNone, nil, 0, nil},
		{"none/whole", SplitNone, []byte("a\nb\nc"), 0, []string{"a\nb\nc"}},
		{"none/default type", "", []byte("xyz"), 0, []string{"xyz"}},
		{"none/at limit", SplitNone, []byte("12345"), 5, []string{"12345"}},

		{"line/empty", SplitLine, nil, 0, nil},
		{"line/terminated", SplitLine, []byte("a,1\nb,2\n"), 0, []string{"a,1", "b,2"}},
		{"line/last without newline", SplitLine, []byte("a,1\nb,2"), 0, []string{"a,1", "b,2"}},
		{"line/crlf", SplitLine, []byte("a\r\nb\r\nc"), 0, []string{"a", "b", "c"}},
		{"line/lone cr is data", SplitLine, []byte("a\rb\nc\r"), 0, []string{"a\rb", "c\r"}},
		{"line/empty lines are records", SplitLine, []byte("a\n\n\nb\n"), 0, []string{"a", "", "", "b"}},
		{"line/only newline", SplitLine, []byte("\n"), 0, []string{""}},
		{"line/at limit", SplitLine, []byte("12345\r\n123\n12345"), 5, []string{"12345", "123", "12345"}},
		{"line/longer than the read buffer", SplitLine,
			[]byte(strings.Repeat("x", 3*readBufferSize+7) + "\n" + strings.Repeat("y", readBufferSize)),
			0, []string{strings.Repeat("x", 3*readBufferSize+7), strings.Repeat("y", readBufferSize)}},

		{"recordio/empty", SplitRecordIO, nil, 0, nil},
		{"recordio/records and padding", SplitRecordIO,
			cat(rioPart(0, "abcd"), rioPart(0, "e"), rioPart(0, ""), rioPart(0, "fghijk")), 0,
			[]string{"abcd", "e", "", "fghijk"}},
		{"recordio/multi-part", SplitRecordIO,
			// "ab<magic>cdef<magic>gh" written as three parts: the magic
			// is dropped at each split and put back by the reader.
			cat(rioPart(0, "x"), rioPart(1, "abcd"), rioPart(2, "efgh"), rioPart(3, "ij"), rioPart(0, "y")), 0,
			[]string{"x", "abcd" + magicLE + "efgh" + magicLE + "ij", "y"}},
		{"recordio/multi-part empty ends", SplitRecordIO,
			cat(rioPart(1, ""), rioPart(3, "")), 0, []string{magicLE}},
		{"recordio/at limit", SplitRecordIO, cat(rioPart(1, "ab"), rioPart(3, "c")), 7, []string{"ab" + magicLE + "c"}},

		{"tfrecord/empty", SplitTFRecord, nil, 0, nil},
		{"tfrecord/records", SplitTFRecord, cat(tfr("hello"), tfr(""), tfr("world!")), 0, []string{"hello", "", "world!"}},
		{"tfrecord/at limit", SplitTFRecord, tfr("12345"), 5, []string{"12345"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// One byte at a time as well, so that no record depends on
			// how reads happen to be cut.
			for _, src := range []io.Reader{bytes.NewReader(tc.in), iotest.OneByteReader(bytes.NewReader(tc.in))} {
				rd, err := NewReader(src, tc.split, tc.max)
				if err != nil {
					t.Fatal(err)
				}
				got, err := readAll(t, rd)
				if err != io.EOF {
					t.Fatalf("err = %v, want io.EOF", err)
				}
				if !equal(got, tc.want) {
					t.Fatalf("records = %q, want %q", got, tc.want)
				}
				if _, err := rd.Next(); err != io.EOF {
					t.Fatalf("Next after the end = %v, want io.EOF", err)
				}
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReaderErrors(t *testing.T) {
	badLenCRC := tfr("abc")
	badLenCRC[8] ^= 1
	badDataCRC := tfr("abc")
	badDataCRC[len(badDataCRC)-1] ^= 0x80
	badData := tfr("abc")
	badData[12] = 'X'
	rec1 := rioPart(0, "abcde") // 16 bytes

	tests := []struct {
		name      string
		split     string
		in        []byte
		max       int64
		good      int // records read before the error
		want      error
		wantIndex int
		wantOff   int64
	}{
		{"none/too large", SplitNone, []byte("123456"), 5, 0, ErrRecordTooLarge, 0, 0},
		{"line/too large", SplitLine, []byte("ok\n123456\n"), 5, 1, ErrRecordTooLarge, 1, 3},
		{"line/too large at the end", SplitLine, []byte("ok\n123456"), 5, 1, ErrRecordTooLarge, 1, 3},
		{"line/too large long", SplitLine, []byte("ok\n" + strings.Repeat("z", 2*readBufferSize)), readBufferSize, 1, ErrRecordTooLarge, 1, 3},

		{"recordio/bad magic", SplitRecordIO, cat(rec1, []byte("\x00\x00\x00\x00\x00\x00\x00\x00")), 0, 1, ErrBadMagic, 1, 16},
		{"recordio/truncated header", SplitRecordIO, cat(rec1, rioPart(0, "abc")[:6]), 0, 1, ErrTruncated, 1, 16},
		{"recordio/truncated data", SplitRecordIO, cat(rec1, rioPart(0, "abcdefgh")[:13]), 0, 1, ErrTruncated, 1, 16},
		{"recordio/truncated padding", SplitRecordIO, rioPart(0, "abcde")[:14], 0, 0, ErrTruncated, 0, 0},
		{"recordio/missing last part", SplitRecordIO, cat(rec1, rioPart(1, "ab")), 0, 1, ErrTruncated, 1, 16},
		{"recordio/continuation first", SplitRecordIO, cat(rec1, rioPart(2, "ab")), 0, 1, ErrBadFlag, 1, 16},
		{"recordio/new record inside one", SplitRecordIO, cat(rioPart(1, "ab"), rioPart(0, "cd")), 0, 0, ErrBadFlag, 0, 0},
		{"recordio/flag out of range", SplitRecordIO, rioPart(5, "ab"), 0, 0, ErrBadFlag, 0, 0},
		{"recordio/too large", SplitRecordIO, cat(rec1, rioPart(0, "abcdef")), 5, 1, ErrRecordTooLarge, 1, 16},
		{"recordio/too large in parts", SplitRecordIO, cat(rioPart(1, "ab"), rioPart(3, "cd")), 7, 0, ErrRecordTooLarge, 0, 0},

		{"tfrecord/length checksum", SplitTFRecord, cat(tfr("x"), badLenCRC), 0, 1, ErrChecksum, 1, 17},
		{"tfrecord/data checksum", SplitTFRecord, cat(tfr("x"), badDataCRC), 0, 1, ErrChecksum, 1, 17},
		{"tfrecord/data changed", SplitTFRecord, badData, 0, 0, ErrChecksum, 0, 0},
		{"tfrecord/truncated header", SplitTFRecord, cat(tfr("x"), tfr("abc")[:11]), 0, 1, ErrTruncated, 1, 17},
		{"tfrecord/truncated data", SplitTFRecord, cat(tfr("x"), tfr("abc")[:14]), 0, 1, ErrTruncated, 1, 17},
		{"tfrecord/truncated data checksum", SplitTFRecord, tfr("abc")[:17], 0, 0, ErrTruncated, 0, 0},
		{"tfrecord/too large", SplitTFRecord, tfr("123456"), 5, 0, ErrRecordTooLarge, 0, 0},
		{"tfrecord/huge length", SplitTFRecord, tfrHeader(1 << 62), 0, 0, ErrRecordTooLarge, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rd, err := NewReader(bytes.NewReader(tc.in), tc.split, tc.max)
			if err != nil {
				t.Fatal(err)
			}
			got, err := readAll(t, rd)
			if len(got) != tc.good {
				t.Errorf("read %d records before the error, want %d", len(got), tc.good)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			var re *RecordError
			if !errors.As(err, &re) {
				t.Fatalf("err = %T, want *RecordError", err)
			}
			if re.Index != tc.wantIndex || re.Offset != tc.wantOff {
				t.Errorf("error at record %d offset %d, want record %d offset %d (%v)", re.Index, re.Offset, tc.wantIndex, tc.wantOff, err)
			}
			if _, again := rd.Next(); again != err {
				t.Errorf("Next after an error = %v, want the same error", again)
			}
		})
	}
}

// tfrHeader is a TFRecord length header with a valid checksum and no data.
func tfrHeader(n uint64) []byte {
	length := binary.LittleEndian.AppendUint64(nil, n)
	return binary.LittleEndian.AppendUint32(length, specMask(length))
}

func TestReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	for _, split := range []string{SplitNone, SplitLine, SplitRecordIO, SplitTFRecord} {
		rd, err := NewReader(iotest.ErrReader(boom), split, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rd.Next(); !errors.Is(err, boom) {
			t.Errorf("%s: err = %v, want the read error", split, err)
		}
	}
}

func TestNewReaderUnknownSplit(t *testing.T) {
	if _, err := NewReader(strings.NewReader(""), "Paragraph", 0); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v, want ErrUnsupported", err)
	}
}

// TestCRC32CVectors checks Go's Castagnoli table, which TFRecord checksums
// rest on, against published CRC-32C test vectors (RFC 3720 appendix B.4
// and the common "123456789" check value).
func TestCRC32CVectors(t *testing.T) {
	ascending := make([]byte, 32)
	descending := make([]byte, 32)
	for i := range ascending {
		ascending[i] = byte(i)
		descending[i] = byte(31 - i)
	}
	tab := crc32.MakeTable(crc32.Castagnoli)
	for _, tc := range []struct {
		name string
		in   []byte
		want uint32
	}{
		{"check value", []byte("123456789"), 0xE3069283},
		{"32 zeros", make([]byte, 32), 0x8A9136AA},
		{"32 ones", bytes.Repeat([]byte{0xFF}, 32), 0x62A8AB43},
		{"ascending", ascending, 0x46DD794E},
		{"descending", descending, 0x113FDB5C},
	} {
		if got := crc32.Checksum(tc.in, tab); got != tc.want {
			t.Errorf("%s: crc32c = 0x%08X, want 0x%08X", tc.name, got, tc.want)
		}
		if got, want := MaskedCRC32C(tc.in), specMask(tc.in); got != want {
			t.Errorf("%s: masked = 0x%08X, want 0x%08X", tc.name, got, want)
		}
	}
	// The mask of the check value worked by hand:
	// 0xE3069283>>15 = 0x0001C60D, 0xE3069283<<17 = 0x25060000 (mod 2^32),
	// or'ed 0x2507C60D, plus 0xA282EAD8 = 0xC78AB0E5.
	if got := MaskedCRC32C([]byte("123456789")); got != 0xC78AB0E5 {
		t.Errorf("masked check value = 0x%08X, want 0xC78AB0E5", got)
	}
}

// TestEncodersMatchSpec checks the package's encoders against the framing
// written by hand from the formats.
func TestEncodersMatchSpec(t *testing.T) {
	if got, want := AppendTFRecord(nil, []byte("hello")), tfr("hello"); !bytes.Equal(got, want) {
		t.Errorf("AppendTFRecord = %x, want %x", got, want)
	}
	for _, tc := range []struct {
		rec  string
		want []byte
	}{
		{"", rioPart(0, "")},
		{"abcde", rioPart(0, "abcde")},
		// The magic at an aligned position splits the record; elsewhere
		// it is data.
		{"abcd" + magicLE + "efgh" + magicLE + "ij", cat(rioPart(1, "abcd"), rioPart(2, "efgh"), rioPart(3, "ij"))},
		{magicLE, cat(rioPart(1, ""), rioPart(3, ""))},
		{"a" + magicLE + "bcd", rioPart(0, "a"+magicLE+"bcd")},
	} {
		if got := AppendRecordIO(nil, []byte(tc.rec)); !bytes.Equal(got, tc.want) {
			t.Errorf("AppendRecordIO(%q) = %x, want %x", tc.rec, got, tc.want)
		}
	}
}
