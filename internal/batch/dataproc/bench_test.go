package dataproc

import (
	"strconv"
	"strings"
	"testing"
)

// BenchmarkCSV measures Input and Output on one 30-column CSV record with
// an ID column dropped before the model and kept beside the prediction.
func BenchmarkCSV(b *testing.B) {
	cols := []string{"id-000123"}
	for i := range 30 {
		cols = append(cols, strconv.FormatFloat(float64(i)*1.37, 'f', 4, 64))
	}
	record := []byte(strings.Join(cols, ",") + "\n")
	output := []byte("0.8734\n")
	p := mustNew(b, Config{InputFilter: "$[1:]", JoinSource: "Input", OutputFilter: "$[0,-1]", ContentType: csv})
	b.SetBytes(int64(len(record)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Input(record); err != nil {
			b.Fatal(err)
		}
		if _, err := p.Output(record, output); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSONLines does the same for a JSON Lines record.
func BenchmarkJSONLines(b *testing.B) {
	record := []byte(`{"id":"id-000123","features":[0.0000,1.3700,2.7400,4.1100,5.4800,6.8500,8.2200,9.5900,10.9600,12.3300]}` + "\n")
	output := []byte("0.8734\n")
	p := mustNew(b, Config{InputFilter: "$.features", JoinSource: "Input", OutputFilter: "$['id','SageMakerOutput']", ContentType: jsonl})
	b.SetBytes(int64(len(record)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Input(record); err != nil {
			b.Fatal(err)
		}
		if _, err := p.Output(record, output); err != nil {
			b.Fatal(err)
		}
	}
}
