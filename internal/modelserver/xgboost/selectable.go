package xgboost

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-io/berth/internal/modelserver"
)

// Selectable inference output: with SAGEMAKER_INFERENCE_OUTPUT set (e.g.
// "predicted_label,probabilities"), the SageMaker XGBoost container answers
// each row with the selected keys instead of the bare prediction. This is
// also its only raw-score option; note that its raw_score is the objective's
// transformed prediction (a probability for binary:logistic), not xgboost's
// output_margin — the container offers no margin output, so neither do we.

// Selectable keys, in the order the container puts them in a JSON object.
var selectKeys = []string{"predicted_label", "labels", "probability", "probabilities", "raw_score", "raw_scores", "predicted_score"}

// validSelect maps an objective to the keys it can answer; other keys are
// answered with NaN, as the container does.
var validSelect = map[string][]string{
	"reg:squarederror": {"predicted_score"},
	"reg:logistic":     {"predicted_score"},
	"reg:gamma":        {"predicted_score"},
	"reg:tweedie":      {"predicted_score"},
	"binary:logistic":  {"predicted_label", "labels", "probability", "probabilities", "raw_score", "raw_scores"},
	"binary:logitraw":  {"predicted_label", "labels", "raw_score", "raw_scores"},
	"binary:hinge":     {"predicted_label", "labels", "raw_score", "raw_scores"},
	"multi:softmax":    {"predicted_label", "labels", "raw_score", "raw_scores"},
	"multi:softprob":   {"predicted_label", "labels", "probability", "probabilities", "raw_score", "raw_scores"},
}

// ParseInferenceOutput splits SAGEMAKER_INFERENCE_OUTPUT into keys.
func ParseInferenceOutput(v string) []string {
	v = strings.ToLower(strings.ReplaceAll(v, " ", ""))
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// selValue is one selected value: a scalar (int or float), a list, or NaN.
type selValue struct {
	isInt  bool
	isList bool
	nan    bool
	f      float64
	list   []float64
	ints   bool // list of ints
}

func (m *Model) selected(preds []float32, per int) ([][]selValue, []string, error) {
	b := m.boosters[0]
	valid, ok := validSelect[b.Objective]
	if !ok {
		return nil, nil, modelserver.Errorf(http.StatusInternalServerError,
			"objective %q is not supported for selectable inference output", b.Objective)
	}
	isValid := map[string]bool{}
	for _, k := range valid {
		isValid[k] = true
	}
	// JSON key order: valid keys in the container's order, then the rest.
	var order []string
	for _, k := range selectKeys {
		if isValid[k] && contains(m.opt.InferenceOutput, k) {
			order = append(order, k)
		}
	}
	for _, k := range m.opt.InferenceOutput {
		if !isValid[k] && !contains(order, k) {
			order = append(order, k)
		}
	}
	rows := len(preds) / per
	out := make([][]selValue, rows)
	for r := range out {
		raw := preds[r*per : r*per+per]
		vals := make([]selValue, len(order))
		for i, k := range order {
			if !isValid[k] {
				vals[i] = selValue{nan: true}
				continue
			}
			vals[i] = selectOne(b, k, raw)
		}
		out[r] = vals
	}
	return out, order, nil
}

func contains(s []string, k string) bool {
	for _, x := range s {
		if x == k {
			return true
		}
	}
	return false
}

func selectOne(b *Booster, key string, raw []float32) selValue {
	obj := b.Objective
	p := float64(raw[0])
	argmax := func() (int, float64) {
		best := 0
		for i, v := range raw {
			if v > raw[best] {
				best = i
			}
		}
		return best, float64(raw[best])
	}
	list := func() []float64 {
		l := make([]float64, len(raw))
		for i, v := range raw {
			l[i] = float64(v)
		}
		return l
	}
	switch key {
	case "predicted_label":
		switch obj {
		case "binary:logistic":
			return selValue{isInt: true, f: b2f(p > 0.5)}
		case "binary:logitraw":
			return selValue{isInt: true, f: b2f(p > 0)}
		case "multi:softprob":
			i, _ := argmax()
			return selValue{isInt: true, f: float64(i)}
		}
		return selValue{f: p}
	case "labels":
		n := 2
		if strings.HasPrefix(obj, "multi:") {
			n = b.NumClass
		}
		l := make([]float64, n)
		for i := range l {
			l[i] = float64(i)
		}
		return selValue{isList: true, ints: true, list: l}
	case "probability", "raw_score":
		if obj == "multi:softprob" {
			_, v := argmax()
			return selValue{f: v}
		}
		return selValue{f: p}
	case "probabilities", "raw_scores":
		if obj == "multi:softprob" {
			return selValue{isList: true, list: list()}
		}
		return selValue{isList: true, list: []float64{1 - p, p}}
	}
	return selValue{f: p} // predicted_score
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func appendSel(dst []byte, v selValue, json bool) []byte {
	switch {
	case v.nan:
		return appendPyFloat(dst, nanF64(), json)
	case v.isInt:
		return fmt.Appendf(dst, "%d", int64(v.f))
	case v.isList:
		dst = append(dst, '[')
		for i, x := range v.list {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			if v.ints {
				dst = fmt.Appendf(dst, "%d", int64(x))
			} else {
				dst = appendPyFloat(dst, x, json)
			}
		}
		return append(dst, ']')
	}
	return appendPyFloat(dst, v.f, json)
}

// encodeSelected writes selectable output as the container does.
func (m *Model) encodeSelected(accept string, preds []float32, per int) ([]byte, error) {
	rows, order, err := m.selected(preds, per)
	if err != nil {
		return nil, err
	}
	var out []byte
	obj := func(dst []byte, vals []selValue) []byte {
		dst = append(dst, '{')
		for i, k := range order {
			if i > 0 {
				dst = append(dst, ", "...)
			}
			dst = append(dst, '"')
			dst = append(dst, k...)
			dst = append(dst, `": `...)
			dst = appendSel(dst, vals[i], true)
		}
		return append(dst, '}')
	}
	switch accept {
	case ContentJSON:
		out = append(out, `{"predictions": [`...)
		for r, vals := range rows {
			if r > 0 {
				out = append(out, ", "...)
			}
			out = obj(out, vals)
		}
		return append(out, "]}"...), nil
	case ContentJSONLines:
		for _, vals := range rows {
			out = append(obj(out, vals), '\n')
		}
		return out, nil
	}
	// text/csv: one line per row, values in the order the user listed the
	// keys; lists are quoted.
	idx := make([]int, len(m.opt.InferenceOutput))
	for i, k := range m.opt.InferenceOutput {
		for j, o := range order {
			if o == k {
				idx[i] = j
			}
		}
	}
	for r, vals := range rows {
		if r > 0 {
			out = append(out, '\n')
		}
		for i, j := range idx {
			if i > 0 {
				out = append(out, ',')
			}
			if vals[j].isList {
				out = append(out, '"')
				out = appendSel(out, vals[j], false)
				out = append(out, '"')
			} else {
				out = appendSel(out, vals[j], false)
			}
		}
	}
	if m.opt.Batch {
		out = append(out, '\n')
	}
	return out, nil
}
