package dataproc_test

import (
	"fmt"

	"github.com/berth-io/berth/internal/batch/dataproc"
)

// Drop the ID column before the model and write it beside the prediction.
func Example() {
	p, err := dataproc.New(dataproc.Config{
		InputFilter:  "$[1:]",
		JoinSource:   "Input",
		OutputFilter: "$[0,-1]",
		ContentType:  "text/csv",
		Accept:       "text/csv",
	})
	if err != nil {
		panic(err)
	}
	record := []byte(`id-17,1.10,"a,b",3` + "\n")
	body, _ := p.Input(record)
	fmt.Printf("model gets %q\n", body)
	out, _ := p.Output(record, []byte("0.93\n"))
	fmt.Printf("written %q\n", out)
	// Output:
	// model gets "1.10,\"a,b\",3\n"
	// written "id-17,0.93\n"
}
