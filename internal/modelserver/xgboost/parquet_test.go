package xgboost

import (
	"bytes"
	"context"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/berth-io/berth/internal/modelserver"
)

// parquetCases are the fixtures with a rows.parquet (testdata/genparquet).
var parquetCases = []string{"binary_logistic", "multi_softprob", "reg_squarederror"}

func fixtureModel(t *testing.T, dir string, opt Options) *Model {
	t.Helper()
	b, err := LoadFile(filepath.Join(dir, "model.json"))
	if err != nil {
		t.Fatal(err)
	}
	if opt.DefaultAccept == "" {
		opt.DefaultAccept = ContentCSV
	}
	return &Model{opt: opt, boosters: []*Booster{b}, width: b.NumFeature}
}

// TestParquetFixtures: the Parquet form of rows.csv parses to the same
// matrix, bit for bit, predicts xgboost's expected values as the CSV path
// does, and answers byte-identical bodies in every output shape.
func TestParquetFixtures(t *testing.T) {
	ctx := context.Background()
	for _, c := range parquetCases {
		t.Run(c, func(t *testing.T) {
			dir := filepath.Join("testdata", c)
			exp := readExpected(t, dir)
			rowsCSV, err := os.ReadFile(filepath.Join(dir, "rows.csv"))
			if err != nil {
				t.Fatal(err)
			}
			rowsPQ, err := os.ReadFile(filepath.Join(dir, "rows.parquet"))
			if err != nil {
				t.Fatal(err)
			}
			m := fixtureModel(t, dir, Options{})
			want, err := m.ParseRows(ContentCSV, rowsCSV)
			if err != nil {
				t.Fatal(err)
			}
			got, err := m.ParseRows(ContentParquet, rowsPQ)
			if err != nil {
				t.Fatal(err)
			}
			if got.Rows != want.Rows || got.Cols != want.Cols {
				t.Fatalf("parquet matrix %d×%d, csv %d×%d", got.Rows, got.Cols, want.Rows, want.Cols)
			}
			for i := range want.Data {
				if math.Float32bits(got.Data[i]) != math.Float32bits(want.Data[i]) &&
					!(math.IsNaN(float64(got.Data[i])) && math.IsNaN(float64(want.Data[i]))) {
					t.Fatalf("value %d (row %d): parquet %v, csv %v", i, i/want.Cols+1, got.Data[i], want.Data[i])
				}
			}
			preds, _, err := m.PredictRows(ctx, got)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, "predict (parquet)", preds, exp.Predict)

			for _, opt := range []Options{{}, {Batch: true}, {InferenceOutput: []string{"predicted_score"}}} {
				m := fixtureModel(t, dir, opt)
				for _, accept := range []string{ContentCSV, ContentJSON, ContentJSONLines} {
					wantResp, err := m.Predict(ctx, &modelserver.Request{ContentType: ContentCSV, Accept: accept, Body: rowsCSV})
					if err != nil {
						t.Fatal(err)
					}
					for _, ct := range []string{ContentParquet, "application/parquet", ""} {
						gotResp, err := m.Predict(ctx, &modelserver.Request{ContentType: ct, Accept: accept, Body: rowsPQ})
						if err != nil {
							t.Fatalf("content type %q: %v", ct, err)
						}
						if gotResp.ContentType != wantResp.ContentType || !bytes.Equal(gotResp.Body, wantResp.Body) {
							t.Fatalf("content type %q, accept %s, %+v: parquet answer differs from csv:\n%.200s\n%.200s",
								ct, accept, opt, gotResp.Body, wantResp.Body)
						}
					}
				}
			}
		})
	}
}

// TestParquetErrors: bad Parquet bodies are 400s with the parse error, as
// bad CSV is; an unknown type stays 415.
func TestParquetErrors(t *testing.T) {
	dir := filepath.Join("testdata", "binary_logistic")
	m := fixtureModel(t, dir, Options{})
	good, err := os.ReadFile(filepath.Join(dir, "rows.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		model *Model
		body  []byte
		ct    string
		want  int
	}{
		{"truncated", m, good[:len(good)/2], ContentParquet, 400},
		{"not parquet", m, []byte("1,2,3\n"), ContentParquet, 400},
		{"footer only", m, []byte("PAR1\x00\x00\x00\x00PAR1"), ContentParquet, 400},
		{"csv as parquet type", m, []byte("PAR1"), ContentParquet, 400},
		{"unknown type", m, good, "application/x-arrow", 415},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.model.Predict(context.Background(), &modelserver.Request{ContentType: tc.ct, Body: tc.body})
			if got := modelserver.StatusOf(err); got != tc.want {
				t.Fatalf("status %d (%v), want %d", got, err, tc.want)
			}
		})
	}
}

// TestParquetFixtureBySpec reads the uncompressed fixture with
// testdata/check_parquet.py, a reader written from the Parquet format
// specification alone, so the fixtures do not rest on parquet-go only.
func TestParquetFixtureBySpec(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not installed")
	}
	out, err := exec.Command(py, filepath.Join("testdata", "check_parquet.py"), filepath.Join("testdata", "multi_softprob")).CombinedOutput()
	if err != nil {
		t.Fatalf("check_parquet.py: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))
}
