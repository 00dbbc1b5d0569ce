package records_test

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/berth-io/berth/internal/batch/records"
)

// An object is decompressed, split and packed into mini-batches.
func ExampleNewBatcher() {
	obj := strings.NewReader("1,2\r\n3,4\n5,6\n7,8")
	in, err := records.Decompress(obj, records.CompressionNone)
	if err != nil {
		panic(err)
	}
	defer in.Close()
	rd, err := records.NewReader(in, records.SplitLine, 1<<20)
	if err != nil {
		panic(err)
	}
	b := records.NewBatcher(rd, records.MultiRecord, records.SplitLine, 8)
	for {
		batch, err := b.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fmt.Println("failed:", err)
			return
		}
		fmt.Printf("records %d-%d: %q\n", batch.First, batch.First+batch.Count-1, batch.Body)
	}
	// Output:
	// records 0-1: "1,2\n3,4\n"
	// records 2-3: "5,6\n7,8\n"
}
