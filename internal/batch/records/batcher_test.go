package records

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// encode writes recs as a stream of the given split type, by hand from the
// formats (see reader_test.go).
func encode(split string, recs ...string) []byte {
	var b []byte
	for _, r := range recs {
		switch split {
		case SplitLine:
			b = append(append(b, r...), '\n')
		case SplitRecordIO:
			b = append(b, rioPart(0, r)...)
		case SplitTFRecord:
			b = append(b, tfr(r)...)
		default:
			b = append(b, r...)
		}
	}
	return b
}

type wantBatch struct {
	body         string
	first, count int
}

func collect(t *testing.T, b *Batcher) ([]wantBatch, error) {
	t.Helper()
	var out []wantBatch
	for i := 0; i < 1e6; i++ {
		batch, err := b.Next()
		if err != nil {
			return out, err
		}
		out = append(out, wantBatch{string(batch.Body), batch.First, batch.Count})
	}
	t.Fatal("batcher did not end")
	return nil, nil
}

func TestBatcher(t *testing.T) {
	rio := func(recs ...string) string { return string(encode(SplitRecordIO, recs...)) }
	tf := func(recs ...string) string { return string(encode(SplitTFRecord, recs...)) }
	tests := []struct {
		name       string
		split      string
		strategy   string
		in         []byte
		maxPayload int64
		want       []wantBatch
		wantErr    error
		errIndex   int
	}{
		// Empty input: no batches, whatever the combination.
		{"none/single/empty", SplitNone, SingleRecord, nil, 10, nil, nil, 0},
		{"none/multi/empty", SplitNone, MultiRecord, nil, 10, nil, nil, 0},
		{"line/single/empty", SplitLine, SingleRecord, nil, 10, nil, nil, 0},
		{"line/multi/empty", SplitLine, MultiRecord, nil, 10, nil, nil, 0},
		{"recordio/single/empty", SplitRecordIO, SingleRecord, nil, 10, nil, nil, 0},
		{"recordio/multi/empty", SplitRecordIO, MultiRecord, nil, 10, nil, nil, 0},
		{"tfrecord/single/empty", SplitTFRecord, SingleRecord, nil, 10, nil, nil, 0},
		{"tfrecord/multi/empty", SplitTFRecord, MultiRecord, nil, 10, nil, nil, 0},

		// None: the object is one record, one batch, under both strategies.
		{"none/single", SplitNone, SingleRecord, []byte("a\nb\n"), 10, []wantBatch{{"a\nb\n", 0, 1}}, nil, 0},
		{"none/multi", SplitNone, MultiRecord, []byte("a\nb\n"), 10, []wantBatch{{"a\nb\n", 0, 1}}, nil, 0},
		{"none/at limit", SplitNone, MultiRecord, []byte("12345"), 5, []wantBatch{{"12345", 0, 1}}, nil, 0},
		{"none/too large", SplitNone, SingleRecord, []byte("123456"), 5, nil, ErrPayloadTooLarge, 0},
		{"none/unlimited", SplitNone, SingleRecord, []byte("123456"), 0, []wantBatch{{"123456", 0, 1}}, nil, 0},

		// Line: every record is sent with its newline.
		{"line/single", SplitLine, SingleRecord, []byte("a\nbb\r\nccc"), 10,
			[]wantBatch{{"a\n", 0, 1}, {"bb\n", 1, 1}, {"ccc\n", 2, 1}}, nil, 0},
		{"line/single/at limit", SplitLine, SingleRecord, []byte("a\nccc\n"), 4,
			[]wantBatch{{"a\n", 0, 1}, {"ccc\n", 1, 1}}, nil, 0},
		{"line/single/too large", SplitLine, SingleRecord, []byte("a\ncccc\n"), 4,
			[]wantBatch{{"a\n", 0, 1}}, ErrPayloadTooLarge, 1},
		{"line/multi", SplitLine, MultiRecord, []byte("a\nbb\nccc\nd"), 7,
			[]wantBatch{{"a\nbb\n", 0, 2}, {"ccc\nd\n", 2, 2}}, nil, 0},
		{"line/multi/exactly at limit", SplitLine, MultiRecord, []byte("a\nbb\nccc\n"), 5,
			[]wantBatch{{"a\nbb\n", 0, 2}, {"ccc\n", 2, 1}}, nil, 0},
		{"line/multi/one over the limit", SplitLine, MultiRecord, []byte("a\nbb\nccc\n"), 4,
			[]wantBatch{{"a\n", 0, 1}, {"bb\n", 1, 1}, {"ccc\n", 2, 1}}, nil, 0},
		{"line/multi/record at limit", SplitLine, MultiRecord, []byte("a\ncccc\nb"), 5,
			[]wantBatch{{"a\n", 0, 1}, {"cccc\n", 1, 1}, {"b\n", 2, 1}}, nil, 0},
		{"line/multi/too large", SplitLine, MultiRecord, []byte("a\nb\nccccc\nd\n"), 5,
			[]wantBatch{{"a\nb\n", 0, 2}}, ErrPayloadTooLarge, 2},
		{"line/multi/empty lines", SplitLine, MultiRecord, []byte("a\n\nb\n"), 100,
			[]wantBatch{{"a\n\nb\n", 0, 3}}, nil, 0},
		{"line/multi/unlimited", SplitLine, MultiRecord, []byte("a\nb\nc"), 0,
			[]wantBatch{{"a\nb\nc\n", 0, 3}}, nil, 0},

		// RecordIO and TFRecord: bare data in SingleRecord, framing kept
		// in MultiRecord.
		{"recordio/single", SplitRecordIO, SingleRecord, encode(SplitRecordIO, "abcde", "f"), 5,
			[]wantBatch{{"abcde", 0, 1}, {"f", 1, 1}}, nil, 0},
		{"recordio/single/multi-part", SplitRecordIO, SingleRecord, cat(rioPart(1, "ab"), rioPart(3, "c")), 100,
			[]wantBatch{{"ab" + magicLE + "c", 0, 1}}, nil, 0},
		{"recordio/multi", SplitRecordIO, MultiRecord, encode(SplitRecordIO, "abcd", "ef", "ghijk"), 24,
			[]wantBatch{{rio("abcd", "ef"), 0, 2}, {rio("ghijk"), 2, 1}}, nil, 0},
		{"recordio/multi/multi-part", SplitRecordIO, MultiRecord, cat(rioPart(0, "x"), rioPart(1, "abcd"), rioPart(3, "e")), 100,
			[]wantBatch{{string(cat(rioPart(0, "x"), rioPart(1, "abcd"), rioPart(3, "e"))), 0, 2}}, nil, 0},
		// A part boundary where no writer would put one (the magic is
		// not 4-byte aligned in the record) is framed again as MXNet's
		// writer frames the same record: whole.
		{"recordio/multi/unaligned parts", SplitRecordIO, MultiRecord, cat(rioPart(1, "ab"), rioPart(3, "c")), 100,
			[]wantBatch{{rio("ab" + magicLE + "c"), 0, 1}}, nil, 0},
		{"recordio/multi/exactly at limit", SplitRecordIO, MultiRecord, encode(SplitRecordIO, "abcd", "efgh", "i"), 24,
			[]wantBatch{{rio("abcd", "efgh"), 0, 2}, {rio("i"), 2, 1}}, nil, 0},
		{"recordio/multi/too large", SplitRecordIO, MultiRecord, encode(SplitRecordIO, "a", "bcdefghij"), 16,
			[]wantBatch{{rio("a"), 0, 1}}, ErrPayloadTooLarge, 1},
		{"tfrecord/single", SplitTFRecord, SingleRecord, encode(SplitTFRecord, "hello", ""), 5,
			[]wantBatch{{"hello", 0, 1}, {"", 1, 1}}, nil, 0},
		{"tfrecord/multi", SplitTFRecord, MultiRecord, encode(SplitTFRecord, "a", "b", "c"), 40,
			[]wantBatch{{tf("a", "b"), 0, 2}, {tf("c"), 2, 1}}, nil, 0},
		{"tfrecord/multi/exactly at limit", SplitTFRecord, MultiRecord, encode(SplitTFRecord, "a", "b", "c"), 34,
			[]wantBatch{{tf("a", "b"), 0, 2}, {tf("c"), 2, 1}}, nil, 0},
		{"tfrecord/multi/too large", SplitTFRecord, MultiRecord, encode(SplitTFRecord, "a", "bc"), 17,
			[]wantBatch{{tf("a"), 0, 1}}, ErrPayloadTooLarge, 1},
		{"tfrecord/single/too large", SplitTFRecord, SingleRecord, encode(SplitTFRecord, "abcdef"), 5,
			nil, ErrPayloadTooLarge, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rd, err := NewReader(bytes.NewReader(tc.in), tc.split, 0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := collect(t, NewBatcher(rd, tc.strategy, tc.split, tc.maxPayload))
			if len(got) != len(tc.want) {
				t.Fatalf("batches = %+v, want %+v (err %v)", got, tc.want, err)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("batch %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
			if tc.wantErr == nil {
				if err != io.EOF {
					t.Fatalf("err = %v, want io.EOF", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			var re *RecordError
			if !errors.As(err, &re) || re.Index != tc.errIndex {
				t.Fatalf("err = %v, want one naming record %d", err, tc.errIndex)
			}
			if !strings.Contains(err.Error(), "record ") {
				t.Errorf("error %q does not name the record", err)
			}
		})
	}
}

func TestBatcherReaderError(t *testing.T) {
	in := append(encode(SplitTFRecord, "a", "b"), 1, 2, 3)
	for _, strategy := range []string{SingleRecord, MultiRecord} {
		rd, _ := NewReader(bytes.NewReader(in), SplitTFRecord, 0)
		got, err := collect(t, NewBatcher(rd, strategy, SplitTFRecord, 1<<20))
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("%s: err = %v, want ErrTruncated", strategy, err)
		}
		// A MultiRecord batch cut short by bad input is not sent.
		if strategy == MultiRecord && len(got) != 0 {
			t.Errorf("%s: sent %+v before the error", strategy, got)
		}
	}
}

func TestBatcherUnknown(t *testing.T) {
	rd, _ := NewReader(strings.NewReader("a"), SplitLine, 0)
	if _, err := NewBatcher(rd, "ManyRecords", SplitLine, 10).Next(); !errors.Is(err, ErrUnsupported) {
		t.Errorf("strategy: err = %v, want ErrUnsupported", err)
	}
	if _, err := NewBatcher(rd, MultiRecord, "Words", 10).Next(); !errors.Is(err, ErrUnsupported) {
		t.Errorf("split: err = %v, want ErrUnsupported", err)
	}
}

// TestBatchBodyOwned checks that a batch's body survives later calls, so
// that a caller may keep several batches in flight.
func TestBatchBodyOwned(t *testing.T) {
	for _, strategy := range []string{SingleRecord, MultiRecord} {
		rd, _ := NewReader(strings.NewReader("aaaa\nbbbb\ncccc\ndddd\n"), SplitLine, 0)
		b := NewBatcher(rd, strategy, SplitLine, 10)
		var bodies [][]byte
		for {
			batch, err := b.Next()
			if err != nil {
				break
			}
			bodies = append(bodies, batch.Body)
		}
		if got := string(bytes.Join(bodies, nil)); got != "aaaa\nbbbb\ncccc\ndddd\n" {
			t.Errorf("%s: bodies joined = %q", strategy, got)
		}
	}
}
