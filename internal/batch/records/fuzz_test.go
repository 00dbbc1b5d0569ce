package records

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// fuzzMaxRecord keeps fuzzed records small so that a lying length field
// cannot make the fuzzer allocate much.
const fuzzMaxRecord = 1 << 16

// splitFuzz derives records from fuzz input: they are separated by 0x00
// bytes. For Line, newline and carriage-return bytes are dropped since a
// line cannot hold them.
func splitFuzz(data []byte, split string) [][]byte {
	if len(data) == 0 {
		return nil
	}
	recs := bytes.Split(data, []byte{0})
	if split == SplitLine {
		for i, r := range recs {
			recs[i] = bytes.Map(func(c rune) rune {
				if c == '\n' || c == '\r' {
					return -1
				}
				return c
			}, r)
		}
	}
	return recs
}

func encodeRecs(split string, recs [][]byte) []byte {
	var b []byte
	for _, r := range recs {
		switch split {
		case SplitLine:
			b = append(append(b, r...), '\n')
		case SplitRecordIO:
			b = AppendRecordIO(b, r)
		case SplitTFRecord:
			b = AppendTFRecord(b, r)
		}
	}
	return b
}

// checkArbitrary reads arbitrary bytes: the reader must not panic, must
// keep every record within the bound, and must end with io.EOF or an error
// that locates the problem.
func checkArbitrary(t *testing.T, data []byte, split string) {
	rd, err := NewReader(bytes.NewReader(data), split, 1024)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		rec, err := rd.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			var re *RecordError
			if !errors.As(err, &re) || re.Index != i || re.Offset < 0 || re.Offset > int64(len(data)) {
				t.Fatalf("record %d: error %v does not locate the record", i, err)
			}
			return
		}
		if len(rec) > 1024 {
			t.Fatalf("record %d has %d bytes, over the bound", i, len(rec))
		}
		if i > len(data) {
			t.Fatalf("more records than input bytes")
		}
	}
}

// checkRoundTrip frames records and reads them back.
func checkRoundTrip(t *testing.T, data []byte, split string) {
	if len(data) > fuzzMaxRecord {
		return
	}
	recs := splitFuzz(data, split)
	rd, err := NewReader(bytes.NewReader(encodeRecs(split, recs)), split, fuzzMaxRecord)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		rec, err := rd.Next()
		if err == io.EOF {
			if i != len(recs) {
				t.Fatalf("read %d records, wrote %d", i, len(recs))
			}
			return
		}
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if i >= len(recs) || !bytes.Equal(rec, recs[i]) {
			t.Fatalf("record %d = %q, wrote %q", i, rec, recs)
		}
	}
}

func seedStreams(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("a,1\nb,2\r\n\nlast"))
	f.Add(cat(rioPart(0, "abcde"), rioPart(1, "abcd"), rioPart(2, "efgh"), rioPart(3, "i")))
	f.Add(cat(rioPart(0, "abc"), []byte{0x0a, 0x23, 0xd7, 0xce, 0xff, 0xff}))
	f.Add(cat(tfr("hello"), tfr(""), tfr("world")))
	f.Add(tfrHeader(1 << 40))
	f.Add([]byte("x\x00" + magicLE + "yyyy\x00\x00z"))
}

func FuzzLineReader(f *testing.F) {
	seedStreams(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkArbitrary(t, data, SplitLine)
		checkRoundTrip(t, data, SplitLine)
		// Records never hold a newline, and there is one per line.
		rd, _ := NewReader(bytes.NewReader(data), SplitLine, int64(len(data)))
		n := 0
		for {
			rec, err := rd.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if bytes.IndexByte(rec, '\n') >= 0 {
				t.Fatalf("record %q holds a newline", rec)
			}
			n++
		}
		want := bytes.Count(data, []byte{'\n'})
		if len(data) > 0 && data[len(data)-1] != '\n' {
			want++
		}
		if n != want {
			t.Fatalf("%d records, want %d", n, want)
		}
	})
}

func FuzzRecordIOReader(f *testing.F) {
	seedStreams(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkArbitrary(t, data, SplitRecordIO)
		checkRoundTrip(t, data, SplitRecordIO)
	})
}

func FuzzTFRecordReader(f *testing.F) {
	seedStreams(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkArbitrary(t, data, SplitTFRecord)
		checkRoundTrip(t, data, SplitTFRecord)
	})
}

func FuzzNoneReader(f *testing.F) {
	seedStreams(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		checkArbitrary(t, data, SplitNone)
	})
}

func FuzzDecompress(f *testing.F) {
	f.Add([]byte{})
	f.Add(gz(f, "a\nb\n"))
	f.Add(cat(gz(f, "a"), gz(f, "b")))
	f.Add(gz(f, "hello")[:12])
	f.Fuzz(func(t *testing.T, data []byte) {
		rc, err := Decompress(bytes.NewReader(data), CompressionGzip)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		// Bound the output: a small input may legitimately inflate a lot.
		n, err := io.Copy(io.Discard, io.LimitReader(rc, 1<<22))
		if err != nil {
			var ge *GzipError
			if !errors.As(err, &ge) || !errors.Is(err, ErrCorruptGzip) || ge.Offset != n {
				t.Fatalf("err = %v (%T) after %d bytes, want a *GzipError", err, err, n)
			}
		}
	})
}

// FuzzBatcher packs fuzzed records and checks that every batch respects
// the payload limit, batches cover the records in order, and the bodies
// split again into exactly the records.
func FuzzBatcher(f *testing.F) {
	f.Add([]byte("a\x00bb\x00ccc\x00\x00dddd"), uint8(1), true, uint16(6))
	f.Add([]byte("abcd\x00"+magicLE+"efgh\x00i"), uint8(2), true, uint16(24))
	f.Add([]byte("a\x00b\x00c"), uint8(3), false, uint16(17))
	f.Add([]byte("whole object"), uint8(0), true, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, kind uint8, multi bool, maxPayload uint16) {
		if len(data) > fuzzMaxRecord {
			return
		}
		split := []string{SplitNone, SplitLine, SplitRecordIO, SplitTFRecord}[kind%4]
		strategy := SingleRecord
		if multi {
			strategy = MultiRecord
		}
		var recs [][]byte
		var in []byte
		if split == SplitNone {
			in = data
			if len(data) > 0 {
				recs = [][]byte{data}
			}
		} else {
			recs = splitFuzz(data, split)
			in = encodeRecs(split, recs)
		}
		rd, err := NewReader(bytes.NewReader(in), split, fuzzMaxRecord)
		if err != nil {
			t.Fatal(err)
		}
		b := NewBatcher(rd, strategy, split, int64(maxPayload))
		next := 0
		for {
			batch, err := b.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				var re *RecordError
				if !errors.Is(err, ErrPayloadTooLarge) || !errors.As(err, &re) || re.Index != next {
					t.Fatalf("err = %v, want ErrPayloadTooLarge at record %d", err, next)
				}
				if int64(len(sendForm(split, strategy, recs[next]))) <= int64(maxPayload) {
					t.Fatalf("record %d refused but fits", next)
				}
				return
			}
			if batch.First != next || batch.Count < 1 {
				t.Fatalf("batch %+v, want first %d", batch, next)
			}
			if maxPayload > 0 && len(batch.Body) > int(maxPayload) {
				t.Fatalf("body of %d bytes over the limit %d", len(batch.Body), maxPayload)
			}
			var want []byte
			for _, r := range recs[batch.First : batch.First+batch.Count] {
				want = append(want, sendForm(split, strategy, r)...)
			}
			if !bytes.Equal(batch.Body, want) {
				t.Fatalf("body %q, want %q", batch.Body, want)
			}
			// MultiRecord packs greedily: the next record would not
			// have fitted.
			end := batch.First + batch.Count
			if strategy == MultiRecord && maxPayload > 0 && end < len(recs) &&
				len(batch.Body)+len(sendForm(split, strategy, recs[end])) <= int(maxPayload) {
				t.Fatalf("batch %+v stopped before record %d, which fits", batch, end)
			}
			next = end
		}
		if next != len(recs) {
			t.Fatalf("batched %d records of %d", next, len(recs))
		}
	})
}

// sendForm is how one record appears in a request body.
func sendForm(split, strategy string, rec []byte) []byte {
	switch {
	case split == SplitLine:
		return append(append([]byte{}, rec...), '\n')
	case strategy == SingleRecord || split == SplitNone:
		return rec
	case split == SplitRecordIO:
		return AppendRecordIO(nil, rec)
	default:
		return AppendTFRecord(nil, rec)
	}
}
