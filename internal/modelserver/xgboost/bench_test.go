package xgboost

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-io/berth/internal/modelserver"
	"github.com/berth-io/berth/internal/modelserver/tabular"
)

// Benchmark model: by default a synthetic binary:logistic model of 500
// full trees of depth 6 over 28 features (the shape of bench/xgboost), built
// in memory with a fixed seed. bench/xgboost/run.sh sets
// BERTH_XGB_BENCH_MODEL and BERTH_XGB_BENCH_ROWS to a model trained by
// python xgboost and its rows, so both sides run on the same data.
const (
	benchTrees    = 500
	benchDepth    = 6
	benchFeatures = 28
)

func syntheticBooster(tb testing.TB) *Booster {
	tb.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	m := &rawModel{objective: "binary:logistic", kind: KindGBTree, numFeature: benchFeatures, baseScore: 0.5}
	n := 1<<(benchDepth+1) - 1
	for range benchTrees {
		t := rawTree{
			left: make([]int32, n), right: make([]int32, n), feat: make([]int64, n),
			cond: make([]float32, n), defaultLeft: make([]bool, n),
		}
		for i := range n {
			if l := 2*i + 1; l < n {
				t.left[i], t.right[i] = int32(l), int32(l+1)
				t.feat[i] = int64(r.IntN(benchFeatures))
				t.cond[i] = float32(r.NormFloat64())
				t.defaultLeft[i] = r.IntN(2) == 0
			} else {
				t.left[i], t.right[i] = -1, -1
				t.cond[i] = float32(r.NormFloat64() * 0.05)
			}
		}
		m.trees = append(m.trees, t)
		m.treeInfo = append(m.treeInfo, 0)
	}
	b, err := m.build()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func benchSetup(tb testing.TB) (*Booster, *tabular.Matrix, []byte) {
	tb.Helper()
	var b *Booster
	if p := os.Getenv("BERTH_XGB_BENCH_MODEL"); p != "" {
		var err error
		if b, err = LoadFile(p); err != nil {
			tb.Fatal(err)
		}
	} else {
		b = syntheticBooster(tb)
	}
	var csv []byte
	if p := os.Getenv("BERTH_XGB_BENCH_ROWS"); p != "" {
		var err error
		if csv, err = os.ReadFile(p); err != nil {
			tb.Fatal(err)
		}
	} else {
		r := rand.New(rand.NewPCG(3, 4))
		var sb strings.Builder
		for range 1000 {
			for j := range b.NumFeature {
				if j > 0 {
					sb.WriteByte(',')
				}
				if r.Float64() > 0.05 {
					sb.WriteString(strconv.FormatFloat(float64(float32(r.NormFloat64())), 'g', -1, 32))
				}
			}
			sb.WriteByte('\n')
		}
		csv = []byte(sb.String())
	}
	m, err := tabular.ParseCSV(csv, tabular.Options{Width: b.NumFeature})
	if err != nil {
		tb.Fatal(err)
	}
	return b, m, csv
}

// BenchmarkPredict is in-process prediction on one core, batch 1 and 1000;
// compare rows/s with python xgboost inplace_predict (bench/xgboost).
func BenchmarkPredict(b *testing.B) {
	bst, m, _ := benchSetup(b)
	ctx := context.Background()
	for _, batch := range []int{1, 1000} {
		b.Run("batch="+strconv.Itoa(batch), func(b *testing.B) {
			batch := min(batch, m.Rows)
			rows := m.Data[:batch*m.Cols]
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bst.Predict(ctx, rows, m.Cols, 1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// BenchmarkPredictParallel is batch 1000 on all cores.
func BenchmarkPredictParallel(b *testing.B) {
	bst, m, _ := benchSetup(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := bst.Predict(ctx, m.Data, m.Cols, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(m.Rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}

// BenchmarkInvocation is one whole request body to response body (CSV in,
// CSV out) without HTTP, single row and 1000 rows.
func BenchmarkInvocation(b *testing.B) {
	bst, _, csv := benchSetup(b)
	model := &Model{opt: Options{DefaultAccept: ContentCSV, Workers: 1}, boosters: []*Booster{bst}, width: bst.NumFeature}
	one := csv[:strings.IndexByte(string(csv), '\n')+1]
	for _, c := range []struct {
		name string
		body []byte
	}{{"rows=1", one}, {"rows=1000", csv}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			req := &modelserver.Request{ContentType: "text/csv", Body: c.body}
			for b.Loop() {
				if _, err := model.Predict(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseCSV(b *testing.B) {
	_, m, csv := benchSetup(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(csv)))
	for b.Loop() {
		if _, err := tabular.ParseCSV(csv, tabular.Options{Width: m.Cols}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSyntheticBenchModel(t *testing.T) {
	b := syntheticBooster(t)
	row := make([]float32, benchFeatures)
	row[3] = float32(math.NaN())
	p, err := b.Predict(context.Background(), row, benchFeatures, 1)
	if err != nil || len(p) != 1 || !(p[0] > 0 && p[0] < 1) {
		t.Fatalf("%v %v", p, err)
	}
}

// TestParallelMatchesSerial checks the multi-goroutine path gives exactly
// the single-goroutine result, and that cancellation stops it.
func TestParallelMatchesSerial(t *testing.T) {
	bst := syntheticBooster(t)
	r := rand.New(rand.NewPCG(5, 6))
	const n = 3001
	rows := make([]float32, n*benchFeatures)
	for i := range rows {
		if r.IntN(10) == 0 {
			rows[i] = float32(math.NaN())
		} else {
			rows[i] = float32(r.NormFloat64())
		}
	}
	ctx := context.Background()
	serial, err := bst.Predict(ctx, rows, benchFeatures, 1)
	if err != nil {
		t.Fatal(err)
	}
	par, err := bst.Predict(ctx, rows, benchFeatures, 4)
	if err != nil {
		t.Fatal(err)
	}
	for i := range serial {
		if serial[i] != par[i] {
			t.Fatalf("row %d: parallel %v, serial %v", i, par[i], serial[i])
		}
	}
	// Row by row (the small-batch path) agrees within float32 rounding.
	for i := 0; i < n; i += 97 {
		one, err := bst.Predict(ctx, rows[i*benchFeatures:(i+1)*benchFeatures], benchFeatures, 1)
		if err != nil {
			t.Fatal(err)
		}
		if one[0] != serial[i] {
			t.Fatalf("row %d: alone %v, in batch %v", i, one[0], serial[i])
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := bst.Predict(cctx, rows, benchFeatures, 4); err == nil {
		t.Fatal("cancelled prediction succeeded")
	}
}

// TestBenchModelMatchesPython runs under bench/xgboost/run.sh, which sets
// BERTH_XGB_BENCH_EXPECTED to python's predictions for the bench rows.
func TestBenchModelMatchesPython(t *testing.T) {
	p := os.Getenv("BERTH_XGB_BENCH_EXPECTED")
	if p == "" {
		t.Skip("BERTH_XGB_BENCH_EXPECTED not set (see bench/xgboost/run.sh)")
	}
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var want []float64
	for _, f := range strings.Fields(string(raw)) {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, v)
	}
	bst, m, _ := benchSetup(t)
	got, err := bst.Predict(context.Background(), m.Data, m.Cols, 1)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "bench predict", got, want)
}
