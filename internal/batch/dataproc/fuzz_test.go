package dataproc

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/theory/jsonpath"
)

var contentTypes = []string{csv, js, jsonl}

// checkFormat fails t unless rec is well formed in content type ct.
func checkFormat(t *testing.T, ct string, rec []byte) {
	t.Helper()
	rows, err := parse(rec, parseFormat(ct))
	if err != nil {
		t.Fatalf("result %q is not valid %s: %v", rec, ct, err)
	}
	if ct != csv {
		for _, r := range rows {
			if !json.Valid(appendJSON(nil, r)) {
				t.Fatalf("result %q rewrites as invalid JSON", rec)
			}
		}
	}
}

// checkErr fails t unless err is one of the package's record errors.
func checkErr(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrInvalidRecord) && !errors.Is(err, ErrNoMatch) && !errors.Is(err, ErrUnsupported) {
		t.Fatalf("unexpected error kind: %v", err)
	}
}

func FuzzInput(f *testing.F) {
	f.Add("$[1:]", uint8(0), []byte("id,1.10,\"a,b\",3\n"))
	f.Add("$[0,5:]", uint8(0), []byte("1,2,3,4,5,6,7"))
	f.Add("$[-1]", uint8(0), []byte("\"x\"\"y\",2\r\n"))
	f.Add("$.features", uint8(1), []byte(`{"id":1,"features":[1.10,2]}`))
	f.Add("$['id','SageMakerOutput']", uint8(1), []byte(`{"id":1,"SageMakerOutput":{"a":1}}`))
	f.Add("$.id.*", uint8(1), []byte(`{"id":{"a":[1,{"b":null}],"c":"\u00e9"}}`))
	f.Add("$[*][0]", uint8(2), []byte("[[1],[2]]\n[[3]]\n"))
	f.Add("$.field1.['child1','child2']", uint8(2), []byte(`{"field1":{"child1":1}}`))
	f.Fuzz(func(t *testing.T, expr string, ct uint8, rec []byte) {
		ctype := contentTypes[int(ct)%len(contentTypes)]
		p, err := New(Config{InputFilter: expr, ContentType: ctype})
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New: unexpected error kind: %v", err)
			}
			return
		}
		got, err := p.Input(rec)
		if err != nil {
			checkErr(t, err)
			return
		}
		if !p.FiltersInput() {
			if !bytes.Equal(got, rec) {
				t.Fatalf("no filter changed %q to %q", rec, got)
			}
			return
		}
		checkFormat(t, ctype, got)
	})
}

func FuzzOutput(f *testing.F) {
	f.Add("$", "$[0,5:]", uint8(0), uint8(0), []byte("id,1,2,3,4\n"), []byte("0.5\n"))
	f.Add("", "$['id','SageMakerOutput']", uint8(1), uint8(1), []byte(`{"id":1,"f":[1]}`), []byte(`{"s":0.1}`))
	f.Add("Input", "$", uint8(1), uint8(0), []byte(`[1,2]`), []byte("0.1,\"a,b\""))
	f.Add("Input", "$.SageMakerOutput", uint8(2), uint8(2), []byte("{\"a\":1}\n{\"a\":2}\n"), []byte("1\n2\n"))
	f.Add("Input", "$[-1]", uint8(0), uint8(1), []byte("a,b"), []byte(`[1.10,"x"]`))
	f.Add("None", "$[1]", uint8(0), uint8(0), []byte(""), []byte("0.1,0.9"))
	f.Fuzz(func(t *testing.T, join, expr string, ct, accept uint8, in, out []byte) {
		ctype := contentTypes[int(ct)%len(contentTypes)]
		atype := contentTypes[int(accept)%len(contentTypes)]
		if join == "" || join == "$" {
			join = "Input"
		}
		p, err := New(Config{JoinSource: join, OutputFilter: expr, ContentType: ctype, Accept: atype})
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New: unexpected error kind: %v", err)
			}
			return
		}
		got, err := p.Output(in, out)
		if err != nil {
			checkErr(t, err)
			return
		}
		if p.Identity() {
			if !bytes.Equal(got, out) {
				t.Fatalf("identity changed %q to %q", out, got)
			}
			return
		}
		resultType := atype
		if p.Joins() {
			resultType = ctype
		}
		checkFormat(t, resultType, got)
	})
}

// FuzzCSVRoundTrip checks that writing parsed CSV rows and parsing them
// again gives the same fields.
func FuzzCSVRoundTrip(f *testing.F) {
	for _, s := range []string{"a,b", `"a,b",""""`, "1.10,,\"\n\"\r\n", `""`, "x\ny\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		rows, err := parseCSV(rec)
		if err != nil {
			return
		}
		out, err := write(nil, rows, formatCSV)
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		again, err := parseCSV(out)
		if err != nil {
			t.Fatalf("reparse %q (from %q): %v", out, rec, err)
		}
		if len(again) != len(rows) {
			t.Fatalf("%q: %d rows, rewritten %q: %d rows", rec, len(rows), out, len(again))
		}
		for i := range rows {
			if len(rows[i].arr) != len(again[i].arr) {
				t.Fatalf("%q row %d: %d fields, rewritten %q: %d", rec, i, len(rows[i].arr), out, len(again[i].arr))
			}
			for j := range rows[i].arr {
				if !bytes.Equal(rows[i].arr[j].text, again[i].arr[j].text) {
					t.Fatalf("%q field %d/%d: %q became %q", rec, i, j, rows[i].arr[j].text, again[i].arr[j].text)
				}
			}
		}
	})
}

// TestMatchesRFC9535 checks the evaluator against theory/jsonpath's own on
// paths whose result is the plain RFC 9535 node list (an array here).
func TestMatchesRFC9535(t *testing.T) {
	docs := []string{
		`{"id":1,"features":[1.10,2,{"a":3}],"o":{"x":[1,2],"y":"z"}}`,
		`[[1,2,3],[4,5],{"a":6},7]`,
		`[0,1,2,3,4,5,6,7,8,9]`,
	}
	paths := []string{"$[1:]", "$[0,5:]", "$[*]", "$.*", "$[*][0]", "$[*].a", "$.o.*", "$.features[1:]",
		"$[-2:]", "$[:-8]", "$[2:5]", "$[1,3,5]", "$[*][*]", "$.o.x[0,1,0]", "$['id','features'][0]"}
	for _, d := range docs {
		var doc any
		dec := json.NewDecoder(strings.NewReader(d))
		dec.UseNumber()
		if err := dec.Decode(&doc); err != nil {
			t.Fatal(err)
		}
		ours, err := parseJSON([]byte(d))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range paths {
			f, err := compileFilter(path)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			want := jsonpath.MustParse(path).Select(doc)
			got, err := f.apply(ours[0])
			if len(want) == 0 {
				if !errors.Is(err, ErrNoMatch) {
					t.Errorf("%s on %s: got %v, %v; want ErrNoMatch", path, d, got, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s on %s: %v", path, d, err)
				continue
			}
			var gotAny any
			gdec := json.NewDecoder(bytes.NewReader(appendJSON(nil, got)))
			gdec.UseNumber()
			if err := gdec.Decode(&gotAny); err != nil {
				t.Fatal(err)
			}
			// RFC 9535 leaves the order of an object's members to the
			// implementation (theory/jsonpath iterates a Go map); here it
			// is document order, so wildcards are compared as multisets.
			if !reflect.DeepEqual(gotAny, []any(want)) && !(strings.Contains(path, "*") && sameMultiset(t, gotAny.([]any), want)) {
				t.Errorf("%s on %s: got %v, want %v", path, d, gotAny, want)
			}
		}
	}
}

func sameMultiset(t *testing.T, a, b []any) bool {
	t.Helper()
	enc := func(l []any) []string {
		var out []string
		for _, v := range l {
			j, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, string(j))
		}
		slices.Sort(out)
		return out
	}
	return slices.Equal(enc(a), enc(b))
}

func TestWildcardKeepsMemberOrder(t *testing.T) {
	p := mustNew(t, Config{InputFilter: "$.*", ContentType: js})
	got, err := p.Input([]byte(`{"z":1,"a":2,"m":3,"b":4}`))
	if err != nil || string(got) != "[1,2,3,4]" {
		t.Fatalf("Input = %q, %v", got, err)
	}
}
