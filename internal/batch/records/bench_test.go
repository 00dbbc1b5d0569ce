package records

import (
	"bytes"
	"fmt"
	"io"
	"testing"
)

// csvInput builds n bytes of CSV-like lines of about lineLen bytes.
func csvInput(n, lineLen int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		line := fmt.Sprintf("%d,0.125,3.5,%d", i, i*7)
		for len(line) < lineLen-1 {
			line += ",1.0"
		}
		b.WriteString(line[:lineLen-1])
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// BenchmarkLineReader measures Line splitting throughput (MB/s).
func BenchmarkLineReader(b *testing.B) {
	for _, lineLen := range []int{64, 1024} {
		in := csvInput(32<<20, lineLen)
		b.Run(fmt.Sprintf("line=%dB", lineLen), func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				rd, _ := NewReader(bytes.NewReader(in), SplitLine, 0)
				for {
					if _, err := rd.Next(); err != nil {
						if err != io.EOF {
							b.Fatal(err)
						}
						break
					}
				}
			}
		})
	}
}

// BenchmarkMultiRecord measures splitting and MultiRecord batching
// throughput (MB/s of input) at SageMaker's default 6 MB payload.
func BenchmarkMultiRecord(b *testing.B) {
	in := csvInput(32<<20, 64)
	var tf []byte
	rd, _ := NewReader(bytes.NewReader(in), SplitLine, 0)
	for {
		rec, err := rd.Next()
		if err != nil {
			break
		}
		tf = AppendTFRecord(tf, rec)
	}
	for _, tc := range []struct {
		split string
		in    []byte
	}{{SplitLine, in}, {SplitTFRecord, tf}} {
		b.Run(tc.split, func(b *testing.B) {
			b.SetBytes(int64(len(tc.in)))
			b.ReportAllocs()
			for b.Loop() {
				rd, _ := NewReader(bytes.NewReader(tc.in), tc.split, 0)
				bt := NewBatcher(rd, MultiRecord, tc.split, 6<<20)
				for {
					if _, err := bt.Next(); err != nil {
						if err != io.EOF {
							b.Fatal(err)
						}
						break
					}
				}
			}
		})
	}
}
