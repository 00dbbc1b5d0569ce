package xgboost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-io/berth/internal/modelserver"
	"github.com/berth-io/berth/internal/modelserver/tabular"
)

// Content types, as the SageMaker XGBoost container names them.
const (
	ContentCSV       = "text/csv"
	ContentLibSVM    = "text/libsvm"
	ContentXLibSVM   = "text/x-libsvm"
	ContentJSON      = "application/json"
	ContentJSONLines = "application/jsonlines"
	// ContentParquet is a Parquet file of numeric feature columns.
	ContentParquet = "application/x-parquet"
)

// Options configure the framework.
type Options struct {
	// Batch makes text/csv responses one prediction per line with a
	// trailing newline, as the container does under batch transform
	// (SAGEMAKER_BATCH=true).
	Batch bool
	// DefaultAccept is used when a request has no Accept or */*
	// (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT, default text/csv).
	DefaultAccept string
	// InferenceOutput selects per-row output keys (SAGEMAKER_INFERENCE_OUTPUT,
	// e.g. predicted_label,probabilities), as the container's selectable
	// inference output; nil answers bare predictions.
	InferenceOutput []string
	// Workers bounds the goroutines one large request predicts on
	// (0 = GOMAXPROCS).
	Workers int
	// Logger receives load logs; nil discards them.
	Logger *slog.Logger
}

// OptionsFromEnv reads Options from the container environment.
func OptionsFromEnv(getenv func(string) string) Options {
	o := Options{DefaultAccept: ContentCSV}
	o.Batch = strings.EqualFold(strings.TrimSpace(getenv("SAGEMAKER_BATCH")), "true")
	o.InferenceOutput = ParseInferenceOutput(getenv("SAGEMAKER_INFERENCE_OUTPUT"))
	if v := strings.TrimSpace(getenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT")); v != "" {
		o.DefaultAccept = strings.ToLower(v)
	}
	return o
}

// Framework is the "xgboost" modelserver.Framework.
type Framework struct {
	opt Options
	log *slog.Logger
}

var _ modelserver.Framework = (*Framework)(nil)

// New returns the XGBoost framework.
func New(opt Options) *Framework {
	if opt.DefaultAccept == "" {
		opt.DefaultAccept = ContentCSV
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Framework{opt: opt, log: log.With("component", "xgboost")}
}

// Name implements modelserver.Framework.
func (f *Framework) Name() string { return "xgboost" }

// Load reads every regular, non-hidden file at the top of dir as an XGBoost
// model, whatever its name. Like the SageMaker container, several models
// form an ensemble whose predictions are averaged.
func (f *Framework) Load(ctx context.Context, dir string) (modelserver.Model, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read model dir: %w", err)
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("no model file in %s", dir)
	}
	m := &Model{opt: f.opt}
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("load model: %w", err)
		}
		b, err := LoadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		if len(m.boosters) > 0 && b.OutputsPerRow() != m.boosters[0].OutputsPerRow() {
			return nil, fmt.Errorf("ensemble models disagree on outputs per row (%s)", n)
		}
		m.boosters = append(m.boosters, b)
		m.width = max(m.width, b.NumFeature)
		f.log.Info("xgboost model loaded", "file", n, "objective", b.Objective, "booster", b.Kind,
			"trees", b.NumTrees(), "features", b.NumFeature, "classes", b.NumClass)
	}
	return m, nil
}

// Model is a loaded XGBoost model (or ensemble) answering invocations.
type Model struct {
	opt      Options
	boosters []*Booster
	width    int
}

var (
	_ modelserver.Model = (*Model)(nil)
	_ modelserver.Sizer = (*Model)(nil)
)

// MemoryBytes implements modelserver.Sizer.
func (m *Model) MemoryBytes() int64 {
	var n int64
	for _, b := range m.boosters {
		n += b.MemoryBytes()
	}
	return n
}

// Boosters returns the loaded boosters.
func (m *Model) Boosters() []*Booster { return m.boosters }

// ParseRows parses a request body of the given Content-Type into rows of
// the model's width.
func (m *Model) ParseRows(contentType string, body []byte) (*tabular.Matrix, error) {
	ct, err := requestType(contentType, body)
	if err != nil {
		return nil, err
	}
	opt := tabular.Options{Width: m.width}
	var mat *tabular.Matrix
	switch ct {
	case ContentCSV:
		mat, err = tabular.ParseCSV(body, opt)
	case ContentLibSVM, ContentXLibSVM:
		mat, err = tabular.ParseLibSVM(body, opt)
	case ContentJSON:
		mat, err = tabular.ParseJSON(body, opt)
	case ContentJSONLines:
		mat, err = tabular.ParseJSONLines(body, opt)
	case ContentParquet:
		mat, err = tabular.ParseParquet(body, opt)
	}
	if err != nil {
		return nil, modelserver.Errorf(http.StatusBadRequest, "cannot parse %s payload: %w", ct, err)
	}
	return mat, nil
}

// requestType normalises a Content-Type. With none, the body is sniffed:
// Parquet if it starts with Parquet's magic, libsvm if it has
// "index:value" tokens, else csv.
func requestType(contentType string, body []byte) (string, error) {
	if strings.TrimSpace(contentType) == "" {
		if bytes.HasPrefix(body, []byte("PAR1")) {
			return ContentParquet, nil
		}
		if bytes.IndexByte(body, ':') >= 0 && bytes.IndexByte(body, '{') < 0 {
			return ContentLibSVM, nil
		}
		return ContentCSV, nil
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "", modelserver.Errorf(http.StatusUnsupportedMediaType, "invalid content type %q", contentType)
	}
	switch mt {
	case ContentCSV, ContentLibSVM, ContentXLibSVM, ContentJSON, ContentJSONLines, ContentParquet:
		return mt, nil
	case "application/x-jsonlines", "application/jsonl":
		return ContentJSONLines, nil
	case "application/parquet", "application/vnd.apache.parquet":
		return ContentParquet, nil
	}
	return "", modelserver.Errorf(http.StatusUnsupportedMediaType,
		"content type %s is not supported; use text/csv, text/libsvm, text/x-libsvm, application/json, application/jsonlines or application/x-parquet", mt)
}

// responseType picks the response type from an Accept header.
func (m *Model) responseType(accept string) (string, error) {
	if strings.TrimSpace(accept) == "" {
		return m.opt.DefaultAccept, nil
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(part)
		if err != nil {
			continue
		}
		switch mt {
		case "*/*", "text/*":
			if mt == "*/*" {
				return m.opt.DefaultAccept, nil
			}
			return ContentCSV, nil
		case ContentCSV, ContentJSON, ContentJSONLines:
			return mt, nil
		}
	}
	return "", modelserver.Errorf(http.StatusNotAcceptable,
		"accept type %q is not supported; use text/csv, application/json or application/jsonlines", accept)
}

// Predict implements modelserver.Model.
func (m *Model) Predict(ctx context.Context, req *modelserver.Request) (*modelserver.Response, error) {
	accept, err := m.responseType(req.Accept)
	if err != nil {
		return nil, err
	}
	mat, err := m.ParseRows(req.ContentType, req.Body)
	if err != nil {
		return nil, err
	}
	if mat.Rows == 0 {
		return nil, modelserver.Errorf(http.StatusBadRequest, "payload has no rows")
	}
	preds, per, err := m.PredictRows(ctx, mat)
	if err != nil {
		return nil, err
	}
	if len(m.opt.InferenceOutput) > 0 {
		body, err := m.encodeSelected(accept, preds, per)
		if err != nil {
			return nil, err
		}
		return &modelserver.Response{ContentType: accept, Body: body}, nil
	}
	return &modelserver.Response{ContentType: accept, Body: m.encode(accept, preds, per)}, nil
}

// PredictRows predicts a parsed matrix, averaging an ensemble. It returns
// the predictions and the number of values per row.
func (m *Model) PredictRows(ctx context.Context, mat *tabular.Matrix) ([]float32, int, error) {
	var sum []float32
	per := m.boosters[0].OutputsPerRow()
	for _, b := range m.boosters {
		p, err := b.Predict(ctx, mat.Data, mat.Cols, m.opt.Workers)
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil, 0, modelserver.Errorf(http.StatusServiceUnavailable, "prediction cancelled: %w", err)
			}
			return nil, 0, modelserver.Errorf(http.StatusBadRequest, "predict: %w", err)
		}
		if sum == nil {
			sum = p
			continue
		}
		for i := range sum {
			sum[i] += p[i]
		}
	}
	if n := len(m.boosters); n > 1 {
		for i := range sum {
			sum[i] /= float32(n)
		}
	}
	return sum, per, nil
}

// encode writes predictions the way the SageMaker XGBoost container does.
func (m *Model) encode(accept string, preds []float32, per int) []byte {
	rows := len(preds) / per
	out := make([]byte, 0, len(preds)*22+32)
	appendRow := func(dst []byte, r int, json bool) []byte {
		if per == 1 {
			return appendPyFloat(dst, float64(preds[r]), json)
		}
		dst = append(dst, '[')
		for i, v := range preds[r*per : r*per+per] {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = appendPyFloat(dst, float64(v), json)
		}
		return append(dst, ']')
	}
	switch accept {
	case ContentJSON:
		out = append(out, `{"predictions": [`...)
		for r := 0; r < rows; r++ {
			if r > 0 {
				out = append(out, ", "...)
			}
			out = append(out, `{"score": `...)
			out = appendRow(out, r, true)
			out = append(out, '}')
		}
		return append(out, "]}"...)
	case ContentJSONLines:
		for r := 0; r < rows; r++ {
			out = append(out, `{"score": `...)
			out = appendRow(out, r, true)
			out = append(out, "}\n"...)
		}
		return out
	}
	for r := 0; r < rows; r++ {
		if r > 0 && !m.opt.Batch {
			out = append(out, ',')
		}
		out = appendRow(out, r, false)
		if m.opt.Batch {
			out = append(out, '\n')
		}
	}
	return out
}
