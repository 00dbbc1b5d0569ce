package xgboost

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-io/berth/internal/modelserver"
)

// loadFixtureModel loads one fixture's three formats as an ensemble-free
// model from a temp dir holding only the JSON file.
func loadFixtureModel(t *testing.T, name string, opt Options) (*Model, expected, [][]string) {
	t.Helper()
	src := filepath.Join("testdata", name)
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(src, "xgboost-model"))
	if err != nil {
		b, err = os.ReadFile(filepath.Join(src, "model.json"))
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "xgboost-model"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := New(opt).Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := os.ReadFile(filepath.Join(src, "rows.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var cells [][]string
	for _, l := range strings.Split(strings.TrimSpace(string(rows)), "\n") {
		cells = append(cells, strings.Split(l, ","))
	}
	return m.(*Model), readExpected(t, src), cells
}

func csvBody(cells [][]string) string {
	var sb strings.Builder
	for _, r := range cells {
		sb.WriteString(strings.Join(r, ","))
		sb.WriteByte('\n')
	}
	return sb.String()
}

func libsvmBody(cells [][]string) string {
	var sb strings.Builder
	for _, r := range cells {
		sb.WriteString("0")
		for j, v := range r {
			if v != "" {
				sb.WriteString(" " + strconv.Itoa(j) + ":" + v)
			}
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

func jsonRows(cells [][]string) []string {
	var rows []string
	for _, r := range cells {
		vals := make([]string, len(r))
		for j, v := range r {
			if v == "" {
				v = "null"
			}
			vals[j] = v
		}
		rows = append(rows, "["+strings.Join(vals, ",")+"]")
	}
	return rows
}

// parseScores reads predictions back from any of the three response types.
func parseScores(t *testing.T, accept string, body []byte) []float64 {
	t.Helper()
	var out []float64
	add := func(v any) {
		switch x := v.(type) {
		case float64:
			out = append(out, x)
		case []any:
			for _, e := range x {
				out = append(out, e.(float64))
			}
		default:
			t.Fatalf("unexpected score %T", v)
		}
	}
	switch accept {
	case ContentJSON:
		var r struct {
			Predictions []struct{ Score any } `json:"predictions"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("bad json %q: %v", body, err)
		}
		for _, p := range r.Predictions {
			add(p.Score)
		}
	case ContentJSONLines:
		for _, l := range strings.Split(strings.TrimSpace(string(body)), "\n") {
			var r struct{ Score any }
			if err := json.Unmarshal([]byte(l), &r); err != nil {
				t.Fatalf("bad jsonlines %q: %v", l, err)
			}
			add(r.Score)
		}
	default:
		s := strings.NewReplacer("[", "", "]", "", " ", "", "\n", ",").Replace(string(body))
		for _, f := range strings.Split(strings.Trim(s, ","), ",") {
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				t.Fatalf("bad csv value %q in %q", f, body)
			}
			out = append(out, v)
		}
	}
	return out
}

func TestContentTypes(t *testing.T) {
	ctx := context.Background()
	for _, fixture := range []string{"binary_logistic", "multi_softprob", "multi_softmax", "categorical"} {
		m, exp, cells := loadFixtureModel(t, fixture, Options{})
		jr := jsonRows(cells)
		bodies := map[string]string{
			"text/csv":                   csvBody(cells),
			"text/csv;charset=utf-8":     csvBody(cells),
			"text/csv; charset=UTF-8":    strings.ReplaceAll(csvBody(cells), "\n", "\r\n"),
			"text/libsvm":                libsvmBody(cells),
			"text/x-libsvm":              libsvmBody(cells),
			"application/json":           `{"instances": [` + wrapFeatures(jr) + `]}`,
			"application/json; a=b":      `[` + strings.Join(jr, ",") + `]`,
			"application/jsonlines":      strings.Join(wrapEach(jr), "\n"),
			"application/jsonlines; x=1": strings.Join(jr, "\n") + "\n",
			"":                           csvBody(cells),
		}
		for ct, body := range bodies {
			for _, accept := range []string{"", "*/*", ContentCSV, ContentJSON, ContentJSONLines, "application/json, text/csv"} {
				t.Run(fixture+"/"+ct+"/"+accept, func(t *testing.T) {
					resp, err := m.Predict(ctx, &modelserver.Request{ContentType: ct, Accept: accept, Body: []byte(body)})
					if err != nil {
						t.Fatal(err)
					}
					want := accept
					switch accept {
					case "", "*/*":
						want = ContentCSV
					case "application/json, text/csv":
						want = ContentJSON
					}
					if resp.ContentType != want {
						t.Fatalf("content type %q, want %q", resp.ContentType, want)
					}
					got := parseScores(t, want, resp.Body)
					if len(got) != len(exp.Predict) {
						t.Fatalf("got %d scores, want %d", len(got), len(exp.Predict))
					}
					for i := range got {
						if !closeEnough(float32(got[i]), exp.Predict[i]) {
							t.Fatalf("score %d = %v, want %v", i, got[i], exp.Predict[i])
						}
					}
				})
			}
		}
	}
}

func wrapFeatures(rows []string) string { return strings.Join(wrapEach(rows), ",") }

func wrapEach(rows []string) []string {
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = `{"features": ` + r + `}`
	}
	return out
}

func TestResponseShapes(t *testing.T) {
	ctx := context.Background()
	row := "0.5,-1.25,,2,0.1,-0.3\n1,1,1,1,1,1"
	cases := []struct {
		fixture, accept string
		batch           bool
		check           func(t *testing.T, body string)
	}{
		{"binary_logistic", ContentCSV, false, func(t *testing.T, b string) {
			if strings.Count(b, ",") != 1 || strings.Contains(b, "\n") || strings.Contains(b, "[") {
				t.Fatalf("csv: %q", b)
			}
		}},
		{"binary_logistic", ContentCSV, true, func(t *testing.T, b string) {
			if strings.Count(b, "\n") != 2 || !strings.HasSuffix(b, "\n") || strings.Contains(b, ",") {
				t.Fatalf("batch csv: %q", b)
			}
		}},
		{"multi_softprob", ContentCSV, false, func(t *testing.T, b string) {
			if !strings.HasPrefix(b, "[") || strings.Count(b, "],[") != 1 || strings.Count(b, ", ") != 4 {
				t.Fatalf("softprob csv: %q", b)
			}
		}},
		{"multi_softmax", ContentCSV, false, func(t *testing.T, b string) {
			for _, f := range strings.Split(b, ",") {
				if !strings.HasSuffix(f, ".0") {
					t.Fatalf("softmax class %q in %q is not a python float", f, b)
				}
			}
		}},
		{"binary_logistic", ContentJSON, false, func(t *testing.T, b string) {
			if !strings.HasPrefix(b, `{"predictions": [{"score": `) || strings.Count(b, "score") != 2 {
				t.Fatalf("json: %q", b)
			}
		}},
		{"multi_softprob", ContentJSON, false, func(t *testing.T, b string) {
			if !strings.HasPrefix(b, `{"predictions": [{"score": [`) {
				t.Fatalf("softprob json: %q", b)
			}
		}},
		{"binary_logistic", ContentJSONLines, false, func(t *testing.T, b string) {
			if strings.Count(b, "\n") != 2 || !strings.HasPrefix(b, `{"score": `) {
				t.Fatalf("jsonlines: %q", b)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.fixture+"/"+c.accept+"/"+strconv.FormatBool(c.batch), func(t *testing.T) {
			m, _, _ := loadFixtureModel(t, c.fixture, Options{Batch: c.batch})
			resp, err := m.Predict(ctx, &modelserver.Request{ContentType: "text/csv", Accept: c.accept, Body: []byte(row)})
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, string(resp.Body))
		})
	}
}

func TestBadRequests(t *testing.T) {
	ctx := context.Background()
	m, _, _ := loadFixtureModel(t, "binary_logistic", Options{})
	cases := []struct {
		ct, accept, body string
		status           int
		msg              string
	}{
		{"text/csv", "", "1,2,3\n1,2,x,4", http.StatusBadRequest, "row 2, column 3"},
		{"text/csv", "", "1,2,3\n1,2", http.StatusBadRequest, "row 2"},
		{"text/csv", "", "1,2,3,4,5,6,7", http.StatusBadRequest, "row 1, column 7"},
		{"text/libsvm", "", "0 1:1 2:x", http.StatusBadRequest, "row 1, column 3"},
		{"text/libsvm", "", "0 1:1\n0 9:1", http.StatusBadRequest, "row 2, column 2"},
		{"text/libsvm", "", "0 a:1", http.StatusBadRequest, "row 1, column 2"},
		{"application/json", "", `{"instances": [[1,2],[1,"zz"]]}`, http.StatusBadRequest, "row 2, column 2"},
		{"application/json", "", `{"instances": [[1,2],[1,{}]]}`, http.StatusBadRequest, "row 2, column 2"},
		{"application/json", "", `{"nope": 1}`, http.StatusBadRequest, "instances"},
		{"application/json", "", `{`, http.StatusBadRequest, "invalid json"},
		{"application/jsonlines", "", "[1,2]\n[1,2\n", http.StatusBadRequest, "row 2"},
		{"image/png", "", "1,2", http.StatusUnsupportedMediaType, "image/png"},
		{"text/csv", "image/png", "1,2", http.StatusNotAcceptable, "image/png"},
		{"text/csv", "", "\n\n", http.StatusBadRequest, "no rows"},
	}
	for _, c := range cases {
		t.Run(c.ct+"/"+c.body, func(t *testing.T) {
			_, err := m.Predict(ctx, &modelserver.Request{ContentType: c.ct, Accept: c.accept, Body: []byte(c.body)})
			if err == nil {
				t.Fatal("no error")
			}
			if got := modelserver.StatusOf(err); got != c.status {
				t.Fatalf("status %d, want %d (%v)", got, c.status, err)
			}
			var e *modelserver.Error
			if !errors.As(err, &e) || !strings.Contains(e.Message, c.msg) {
				t.Fatalf("message %q does not name %q", err, c.msg)
			}
		})
	}
}

func TestAppendPyFloat(t *testing.T) {
	// Expected strings are Python's repr() of the same float64 values.
	cases := map[float64]string{
		0.5: "0.5", 1: "1.0", -2: "-2.0", 0: "0.0", 1e16: "1e+16", 1.5e-5: "1.5e-05",
		0.0001: "0.0001", 123456789: "123456789.0", 1234567890123456: "1234567890123456.0",
		float64(float32(0.1)): "0.10000000149011612", 2.5e-300: "2.5e-300",
		math.NaN(): "nan", math.Inf(-1): "-inf", 12.75: "12.75",
	}
	for v, want := range cases {
		if got := string(appendPyFloat(nil, v, false)); got != want {
			t.Errorf("appendPyFloat(%v) = %q, want %q", v, got, want)
		}
	}
	if got := string(appendPyFloat(nil, math.NaN(), true)); got != "NaN" {
		t.Errorf("json NaN = %q", got)
	}
}

func TestEnsembleAverages(t *testing.T) {
	dir := t.TempDir()
	for i, f := range []string{"testdata/binary_logistic/model.json", "testdata/binary_logistic_base/model.ubj"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "m"+strconv.Itoa(i)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m, err := New(Options{}).Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte("0.5,-1.25,,2,0.1,-0.3")
	resp, err := m.Predict(context.Background(), &modelserver.Request{ContentType: "text/csv", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	got := parseScores(t, ContentCSV, resp.Body)
	var want float64
	for _, b := range m.(*Model).Boosters() {
		p, err := b.Predict(context.Background(), []float32{0.5, -1.25, float32(math.NaN()), 2, 0.1, -0.3}, 6, 1)
		if err != nil {
			t.Fatal(err)
		}
		want += float64(p[0]) / 2
	}
	if math.Abs(got[0]-want) > 1e-6 {
		t.Fatalf("ensemble %v, want %v", got[0], want)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(Options{}).Load(context.Background(), dir); err == nil {
		t.Fatal("empty dir loaded")
	}
	if err := os.WriteFile(filepath.Join(dir, "xgboost-model"), []byte("binf\x00garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(Options{}).Load(context.Background(), dir)
	if !errors.Is(err, ErrCorruptModel) {
		t.Fatalf("corrupt model: %v", err)
	}
}
