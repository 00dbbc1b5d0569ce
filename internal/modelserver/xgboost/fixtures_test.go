package xgboost

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-io/berth/internal/modelserver/tabular"
)

type expected struct {
	Objective    string    `json:"objective"`
	NumClass     int       `json:"num_class"`
	PredictShape []int     `json:"predict_shape"`
	Predict      []float64 `json:"predict"`
	Margin       []float64 `json:"margin"`
}

// modelFiles are the three formats gen_fixtures.py writes for each case.
var modelFiles = []struct {
	name   string
	format Format
}{
	{"model.json", FormatJSON},
	{"model.ubj", FormatUBJSON},
	{"xgboost-model", FormatBinary},
}

func fixtureCases(t testing.TB) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("testdata", "*", "expected.json"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no fixtures found (run testdata/gen_fixtures.py): %v", err)
	}
	for i := range dirs {
		dirs[i] = filepath.Dir(dirs[i])
	}
	return dirs
}

func readExpected(t testing.TB, dir string) expected {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e expected
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// Tolerances: 1e-6 relative, with an absolute floor of 1e-7 for values near
// zero. (Measured: almost all values are bit-identical to xgboost's; the rest
// differ by one float32 ulp, about 1.2e-7 relative.)
const relTol, absTol = 1e-6, 1e-7

func closeEnough(got float32, want float64) bool {
	g := float64(got)
	if math.IsNaN(want) {
		return math.IsNaN(g)
	}
	return math.Abs(g-want) <= relTol*math.Abs(want) || math.Abs(g-want) <= absTol
}

func TestFixturesMatchXGBoost(t *testing.T) {
	ctx := context.Background()
	for _, dir := range fixtureCases(t) {
		exp := readExpected(t, dir)
		rowsCSV, err := os.ReadFile(filepath.Join(dir, "rows.csv"))
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range modelFiles {
			path := filepath.Join(dir, mf.name)
			if _, err := os.Stat(path); err != nil {
				continue // e.g. no binary for categorical models
			}
			t.Run(filepath.Base(dir)+"/"+string(mf.format), func(t *testing.T) {
				raw, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if got := DetectFormat(raw); got != mf.format {
					t.Fatalf("DetectFormat = %s, want %s", got, mf.format)
				}
				b, err := LoadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				if b.Objective != exp.Objective {
					t.Fatalf("objective %q, want %q", b.Objective, exp.Objective)
				}
				m, err := tabular.ParseCSV(rowsCSV, tabular.Options{Width: b.NumFeature})
				if err != nil {
					t.Fatal(err)
				}
				for _, workers := range []int{1, 4} {
					margins, err := b.Margins(ctx, m.Data, m.Cols, workers)
					if err != nil {
						t.Fatal(err)
					}
					compare(t, "margin", margins, exp.Margin)
					pred := b.Transform(append([]float32(nil), margins...))
					compare(t, "predict", pred, exp.Predict)
				}
				// One row at a time takes the small-batch path.
				var single []float32
				for r := 0; r < m.Rows; r++ {
					p, err := b.Margins(ctx, m.Row(r), m.Cols, 1)
					if err != nil {
						t.Fatal(err)
					}
					single = append(single, p...)
				}
				compare(t, "margin (batch 1)", single, exp.Margin)
			})
		}
	}
}

func compare(t *testing.T, what string, got []float32, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	bad := 0
	for i := range got {
		if !closeEnough(got[i], want[i]) {
			if bad < 5 {
				t.Errorf("%s[%d] = %.9g, want %.9g (diff %.3g)", what, i, got[i], want[i], float64(got[i])-want[i])
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d values differ", what, bad, len(got))
	}
}

// TestPickledBoosters reads pickle.dump(Booster) files, as SageMaker's
// XGBoost 1.0–1.2 containers saved models.
func TestPickledBoosters(t *testing.T) {
	ctx := context.Background()
	n := 0
	for _, dir := range fixtureCases(t) {
		path := filepath.Join(dir, "model.pkl")
		if _, err := os.Stat(path); err != nil {
			continue
		}
		n++
		b, err := LoadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		exp := readExpected(t, dir)
		rows, err := os.ReadFile(filepath.Join(dir, "rows.csv"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := tabular.ParseCSV(rows, tabular.Options{Width: b.NumFeature})
		if err != nil {
			t.Fatal(err)
		}
		p, err := b.Predict(ctx, m.Data, m.Cols, 1)
		if err != nil {
			t.Fatal(err)
		}
		compare(t, filepath.Base(dir)+" pickle", p, exp.Predict)
	}
	if n == 0 {
		t.Fatal("no pickle fixtures")
	}
}
