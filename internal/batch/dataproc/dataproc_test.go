package dataproc

import (
	"errors"
	"strings"
	"testing"
)

const (
	csv   = "text/csv"
	js    = "application/json"
	jsonl = "application/jsonlines"
)

func mustNew(t testing.TB, cfg Config) *Processor {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return p
}

// TestDocumentedExamples runs the examples of SageMaker's "Associate
// Prediction Results with Input Records" page and DataProcessing reference.
func TestDocumentedExamples(t *testing.T) {
	tests := []struct {
		name              string
		cfg               Config
		input, modelInput string
		output, final     string
	}{
		{
			// "Output Only Inferences": $ / None / $ is the default.
			name:       "output only inferences",
			cfg:        Config{InputFilter: "$", JoinSource: "None", OutputFilter: "$", ContentType: csv},
			input:      "1,2,3",
			modelInput: "1,2,3",
			output:     "1",
			final:      "1",
		},
		{
			// "Output Input Data and Inferences", JSON: {"key":1} with the
			// result {"label":1}.
			name:       "join json object",
			cfg:        Config{JoinSource: "Input", ContentType: js},
			input:      `{"key":1}`,
			modelInput: `{"key":1}`,
			output:     `{"label":1}`,
			final:      `{"key":1,"SageMakerOutput":{"label":1}}`,
		},
		{
			// The same for CSV: the record [1,2,3] and the label [1]
			// give [1,2,3,1].
			name:       "join csv",
			cfg:        Config{JoinSource: "Input", ContentType: csv},
			input:      "1,2,3",
			modelInput: "1,2,3",
			output:     "1",
			final:      "1,2,3,1",
		},
		{
			// A JSON input that is not an object is wrapped.
			name:       "join json array",
			cfg:        Config{JoinSource: "Input", ContentType: js},
			input:      `[1,2,3]`,
			modelInput: `[1,2,3]`,
			output:     `[1]`,
			final:      `{"SageMakerInput":[1,2,3],"SageMakerOutput":[1]}`,
		},
		{
			// "Output an ID Column with Results and Exclude the ID Column
			// from the Input (CSV)": five columns, the first the ID.
			name:       "csv id column",
			cfg:        Config{InputFilter: "$[1:]", JoinSource: "Input", OutputFilter: "$", ContentType: csv},
			input:      "id7,1.10,2,3,4",
			modelInput: "1.10,2,3,4",
			output:     "0.25",
			final:      "id7,1.10,2,3,4,0.25",
		},
		{
			// The OutputFilter example $[0,5:]: the ID and what follows
			// the five input columns (the prediction).
			name:       "csv id and prediction",
			cfg:        Config{InputFilter: "$[1:]", JoinSource: "Input", OutputFilter: "$[0,5:]", ContentType: csv},
			input:      "id7,1.10,2,3,4",
			modelInput: "1.10,2,3,4",
			output:     "0.25",
			final:      "id7,0.25",
		},
		{
			// "Output an ID Attribute with Results and Exclude the ID
			// Attribute from the Input (JSON)".
			name:       "json id attribute",
			cfg:        Config{InputFilter: "$.features", JoinSource: "Input", OutputFilter: "$['id','SageMakerOutput']", ContentType: js},
			input:      `{"id":"a1","features":[1.10,2.0,3e2]}`,
			modelInput: `[1.10,2.0,3e2]`,
			output:     `{"score":0.75}`,
			final:      `{"id":"a1","SageMakerOutput":{"score":0.75}}`,
		},
		{
			name:       "json lines id attribute",
			cfg:        Config{InputFilter: "$.features", JoinSource: "Input", OutputFilter: "$['id','SageMakerOutput']", ContentType: jsonl},
			input:      "{\"id\":3,\"features\":[0.10,7]}\n",
			modelInput: "[0.10,7]\n",
			output:     "0.5\n",
			final:      "{\"id\":3,\"SageMakerOutput\":0.5}\n",
		},
		{
			// The operator table: $.id.* and $[1,3,5].
			name:       "wildcard child",
			cfg:        Config{InputFilter: "$.id.*", ContentType: js, Accept: js},
			input:      `{"id":{"a":1,"b":[2]},"x":0}`,
			modelInput: `[1,[2]]`,
			output:     `1`,
			final:      `1`,
		},
		{
			name:       "index list",
			cfg:        Config{InputFilter: "$[1,3,5]", ContentType: csv},
			input:      "a,b,c,d,e,f,g",
			modelInput: "b,d,f",
			output:     "1",
			final:      "1",
		},
		{
			name:       "negative index",
			cfg:        Config{InputFilter: "$[-1]", JoinSource: "Input", OutputFilter: "$[0,-1]", ContentType: csv},
			input:      "x,y,z",
			modelInput: "z",
			output:     "9",
			final:      "x,9",
		},
		{
			name:       "slices",
			cfg:        Config{InputFilter: "$[2:5]", ContentType: csv},
			input:      "0,1,2,3,4,5,6",
			modelInput: "2,3,4",
			output:     "1",
			final:      "1",
		},
		{
			name:       "slice without start",
			cfg:        Config{InputFilter: "$[:2]", ContentType: csv},
			input:      "0,1,2",
			modelInput: "0,1",
			output:     "1",
			final:      "1",
		},
		{
			// The documented $.field1.['child1','child2'] form.
			name:       "dot before bracket",
			cfg:        Config{InputFilter: "$.field1.['child1','child2']", ContentType: js},
			input:      `{"field1":{"child2":2,"child1":1,"child3":3}}`,
			modelInput: `{"child1":1,"child2":2}`,
			output:     `1`,
			final:      `1`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, tc.cfg)
			got, err := p.Input([]byte(tc.input))
			if err != nil {
				t.Fatalf("Input: %v", err)
			}
			if string(got) != tc.modelInput {
				t.Errorf("Input = %q, want %q", got, tc.modelInput)
			}
			got, err = p.Output([]byte(tc.input), []byte(tc.output))
			if err != nil {
				t.Fatalf("Output: %v", err)
			}
			if string(got) != tc.final {
				t.Errorf("Output = %q, want %q", got, tc.final)
			}
		})
	}
}

// TestParsesDocumentedFilters checks that every filter SageMaker's
// documentation shows compiles.
func TestParsesDocumentedFilters(t *testing.T) {
	for _, f := range []string{"$", "$[1:]", "$.features", "$[0,5:]", "$['id','SageMakerOutput']",
		"$.id", "$.id.*", "$[1]", "$[1,3,5]", "$[2:5]", "$[:5]", "$[2:]", "$[0]", "$[-1]",
		"$.field1.['child1','child2']"} {
		if _, err := compileFilter(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestIdentity(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{InputFilter: "$", OutputFilter: "$", JoinSource: "None"},
		{ContentType: "application/x-recordio-protobuf"}, // no filter: any type
	} {
		p := mustNew(t, cfg)
		if !p.Identity() || p.FiltersInput() || p.Joins() {
			t.Errorf("%+v: Identity=%v FiltersInput=%v Joins=%v", cfg, p.Identity(), p.FiltersInput(), p.Joins())
		}
		rec := []byte("not even json,\"")
		if got, err := p.Input(rec); err != nil || string(got) != string(rec) {
			t.Errorf("Input = %q, %v", got, err)
		}
		if got, err := p.Output(nil, rec); err != nil || string(got) != string(rec) {
			t.Errorf("Output = %q, %v", got, err)
		}
	}
	p := mustNew(t, Config{JoinSource: "Input", ContentType: csv})
	if p.Identity() || !p.Joins() || p.FiltersInput() {
		t.Errorf("join: Identity=%v Joins=%v FiltersInput=%v", p.Identity(), p.Joins(), p.FiltersInput())
	}
	// Input passes records through when only the output is processed.
	if got, err := p.Input([]byte("a,\"b")); err != nil || string(got) != "a,\"b" {
		t.Errorf("Input = %q, %v", got, err)
	}
}

func TestCSV(t *testing.T) {
	tests := []struct {
		name, filter, in, want string
	}{
		{"quoted comma", "$[1:]", `1,"a,b",2.50`, `"a,b",2.50`},
		{"doubled quote", "$[0]", `"say ""hi""",x`, `"say ""hi"""`},
		{"needless quotes dropped", "$[0,1]", `"abc","1.10"`, `abc,1.10`},
		{"quoted line break", "$[1]", "a,\"l1\nl2\"", "\"l1\nl2\""},
		{"empty fields", "$[1:]", "a,,", ","},
		{"single empty field", "$[1]", "a,", `""`},
		{"numbers keep their text", "$", "1.10,1e5,-0.0,007", "1.10,1e5,-0.0,007"},
		{"crlf kept", "$[1]", "a,b\r\n", "b\r\n"},
		{"lf kept", "$[1]", "a,b\n", "b\n"},
		{"several rows", "$[0]", "a,1\nb,2\n", "a\nb\n"},
		{"wildcard", "$[*]", "a,b", "a,b"},
		{"utf8", "$[1]", "x,héllo", "héllo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, Config{InputFilter: tc.filter, ContentType: "text/csv; charset=utf-8"})
			got, err := p.Input([]byte(tc.in))
			if err != nil {
				t.Fatalf("Input(%q): %v", tc.in, err)
			}
			if string(got) != tc.want {
				t.Errorf("Input(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestJoin(t *testing.T) {
	tests := []struct {
		name                string
		cfg                 Config
		input, output, want string
	}{
		{"csv input json output array", Config{JoinSource: "Input", ContentType: csv, Accept: js},
			"1,\"a,b\"", `[0.1,"x"]`, `1,"a,b",0.1,x`},
		{"csv input json scalar", Config{JoinSource: "Input", ContentType: csv, Accept: js},
			"1,2", `0.50`, `1,2,0.50`},
		{"csv multi-value output", Config{JoinSource: "Input", ContentType: csv},
			"1,2", "0.1,0.9\n", "1,2,0.1,0.9\n"},
		{"json object csv output", Config{JoinSource: "Input", ContentType: js, Accept: csv},
			`{"a":1}`, "0.25", `{"a":1,"SageMakerOutput":0.25}`},
		{"json object csv output several", Config{JoinSource: "Input", ContentType: js, Accept: csv},
			`{"a":1}`, "0.25,cat", `{"a":1,"SageMakerOutput":[0.25,"cat"]}`},
		{"json scalar input", Config{JoinSource: "Input", ContentType: js},
			`"text"`, `{"p":1}`, `{"SageMakerInput":"text","SageMakerOutput":{"p":1}}`},
		{"existing SageMakerOutput overwritten in place", Config{JoinSource: "Input", ContentType: js},
			`{"SageMakerOutput":0,"b":2}`, `1`, `{"SageMakerOutput":1,"b":2}`},
		{"member order and number text kept", Config{JoinSource: "Input", ContentType: js},
			`{"z":1.10,"a":{"y":1e3,"b":null},"m":true}`, `[1.0]`,
			`{"z":1.10,"a":{"y":1e3,"b":null},"m":true,"SageMakerOutput":[1.0]}`},
		{"json lines several rows", Config{JoinSource: "Input", ContentType: jsonl, OutputFilter: "$.SageMakerOutput"},
			"{\"a\":1}\n{\"a\":2}\n", "[1]\n[2]\n", "[1]\n[2]\n"},
		{"output filter without join", Config{OutputFilter: "$.label", ContentType: js},
			`ignored`, `{"label":"cat","p":0.9}`, `"cat"`},
		{"csv output filter without join", Config{OutputFilter: "$[1]", ContentType: csv},
			``, "0.1,0.9", "0.9"},
		{"escaped strings", Config{JoinSource: "Input", ContentType: js},
			`{"s":"a\"b\\c\n\u0001\u00e9"}`, `1`, `{"s":"a\"b\\c\n\u0001é","SageMakerOutput":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, tc.cfg)
			got, err := p.Output([]byte(tc.input), []byte(tc.output))
			if err != nil {
				t.Fatalf("Output: %v", err)
			}
			if string(got) != tc.want {
				t.Errorf("Output = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name          string
		cfg           Config
		input, output string // output "" means: call Input
		want          error
	}{
		{"index past the row", Config{InputFilter: "$[5]", ContentType: csv}, "1,2,3", "", ErrNoMatch},
		{"slice past the row", Config{InputFilter: "$[5:]", ContentType: csv}, "1,2,3", "", ErrNoMatch},
		{"name on csv", Config{InputFilter: "$.features", ContentType: csv}, "1,2,3", "", ErrNoMatch},
		{"missing member", Config{InputFilter: "$.features", ContentType: js}, `{"id":1}`, "", ErrNoMatch},
		{"no listed member", Config{InputFilter: "$['a','b']", ContentType: js}, `{"id":1}`, "", ErrNoMatch},
		{"name on array", Config{InputFilter: "$.a", ContentType: js}, `[1]`, "", ErrNoMatch},
		{"output filter past joined row", Config{JoinSource: "Input", OutputFilter: "$[9]", ContentType: csv}, "1,2", "3", ErrNoMatch},
		{"invalid json input", Config{InputFilter: "$.a", ContentType: js}, `{"a":`, "", ErrInvalidRecord},
		{"trailing garbage json", Config{InputFilter: "$.a", ContentType: js}, `{"a":1} x`, "", ErrInvalidRecord},
		{"empty json", Config{InputFilter: "$.a", ContentType: js}, " \n", "", ErrInvalidRecord},
		{"invalid json output", Config{JoinSource: "Input", ContentType: js}, `{"a":1}`, `{"p":`, ErrInvalidRecord},
		{"invalid json input on join", Config{JoinSource: "Input", ContentType: js}, `nope`, `1`, ErrInvalidRecord},
		{"unclosed quote", Config{InputFilter: "$[0]", ContentType: csv}, `"abc,1`, "", ErrInvalidRecord},
		{"bare quote", Config{InputFilter: "$[0]", ContentType: csv}, `ab"c,1`, "", ErrInvalidRecord},
		{"text after quote", Config{InputFilter: "$[0]", ContentType: csv}, `"ab"c,1`, "", ErrInvalidRecord},
		{"bare carriage return", Config{InputFilter: "$[0]", ContentType: csv}, "a\rb", "", ErrInvalidRecord},
		{"empty csv", Config{InputFilter: "$[0]", ContentType: csv}, "", "", ErrInvalidRecord},
		{"json object into csv", Config{JoinSource: "Input", ContentType: csv, Accept: js}, "1", `{"p":1}`, ErrUnsupported},
		{"nested value as csv field", Config{JoinSource: "Input", ContentType: csv, Accept: js}, "1", `[[1]]`, ErrUnsupported},
		{"row count mismatch", Config{JoinSource: "Input", ContentType: csv}, "1\n2\n", "3\n", ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := mustNew(t, tc.cfg)
			var err error
			if tc.output == "" {
				_, err = p.Input([]byte(tc.input))
			} else {
				_, err = p.Output([]byte(tc.input), []byte(tc.output))
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestInvalidConfig(t *testing.T) {
	for _, cfg := range []Config{
		{JoinSource: "Output"},
		{InputFilter: "features", ContentType: js},
		{InputFilter: "$[", ContentType: js},
		{InputFilter: "$..id", ContentType: js},
		{InputFilter: "$[?@.a==1]", ContentType: js},
		{InputFilter: "$[::2]", ContentType: csv},
		{OutputFilter: "$['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa','bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb']", ContentType: js},
		{InputFilter: "$[1:]", ContentType: "application/x-recordio"},
		{JoinSource: "Input", ContentType: csv, Accept: "application/octet-stream"},
		{OutputFilter: "$[0]"}, // no content type to read the output in
	} {
		if _, err := New(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%+v) = %v, want ErrInvalidConfig", cfg, err)
		}
	}
}

// TestConcurrentUse runs one Processor from several goroutines (under -race).
func TestConcurrentUse(t *testing.T) {
	p := mustNew(t, Config{InputFilter: "$[1:]", JoinSource: "Input", OutputFilter: "$[0,-1]", ContentType: csv})
	done := make(chan error)
	for range 4 {
		go func() {
			for range 200 {
				in := []byte("id,1,2,3\n")
				if _, err := p.Input(in); err != nil {
					done <- err
					return
				}
				if got, err := p.Output(in, []byte("7\n")); err != nil || string(got) != "id,7\n" {
					done <- errors.New(string(got))
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestUnionsCannotMultiply: a filter whose unions select the same values at
// every segment is refused instead of multiplying the record.
func TestUnionsCannotMultiply(t *testing.T) {
	p, err := New(Config{InputFilter: "$[*,*,*,*,*,*][*,*,*,*,*,*][*,*,*,*,*,*][*,*,*,*,*,*]", ContentType: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	row := "[" + strings.Repeat("1,", 5) + "1]"
	rec := []byte("[" + strings.Repeat(row+",", 5) + row + "]")
	rec = []byte("[" + strings.Repeat(string(rec)+",", 5) + string(rec) + "]")
	rec = []byte("[" + strings.Repeat(string(rec)+",", 5) + string(rec) + "]")
	out, err := p.Input(rec)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Input = %d bytes, %v; want ErrUnsupported", len(out), err)
	}
	// An ordinary union still works.
	q, err := New(Config{InputFilter: "$[0,2]", ContentType: "application/json"})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := q.Input([]byte("[1,2,3]")); err != nil || string(out) != "[1,3]" {
		t.Fatalf("$[0,2] = %q, %v", out, err)
	}
}
