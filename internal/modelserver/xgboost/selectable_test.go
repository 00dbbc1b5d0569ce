package xgboost

import (
	"context"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/berth-io/berth/internal/modelserver"
)

func TestSelectableInferenceOutput(t *testing.T) {
	ctx := context.Background()
	rows := "0.5,-1.25,,2,0.1,-0.3\n-1,1,1,-1,1,1"
	keys := ParseInferenceOutput(" Predicted_Label, probabilities,probability,predicted_score")
	if strings.Join(keys, ",") != "predicted_label,probabilities,probability,predicted_score" {
		t.Fatalf("keys %v", keys)
	}

	m, exp, _ := loadFixtureModel(t, "binary_logistic", Options{InferenceOutput: keys})
	_ = exp
	resp, err := m.Predict(ctx, &modelserver.Request{ContentType: "text/csv", Accept: ContentCSV, Body: []byte(rows)})
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^([01]),"\[([0-9.e-]+), ([0-9.e-]+)\]",([0-9.e-]+),nan$`)
	lines := strings.Split(string(resp.Body), "\n")
	if len(lines) != 2 {
		t.Fatalf("csv %q", resp.Body)
	}
	for _, l := range lines {
		g := line.FindStringSubmatch(l)
		if g == nil {
			t.Fatalf("csv line %q", l)
		}
		p, _ := strconv.ParseFloat(g[4], 64)
		p1, _ := strconv.ParseFloat(g[3], 64)
		p0, _ := strconv.ParseFloat(g[2], 64)
		if p1 != p || math.Abs(p0-(1-p)) > 1e-12 || (g[1] == "1") != (p > 0.5) {
			t.Fatalf("inconsistent line %q", l)
		}
	}

	resp, err = m.Predict(ctx, &modelserver.Request{ContentType: "text/csv", Accept: ContentJSON, Body: []byte(rows)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(resp.Body), `{"predictions": [{"predicted_label": `) ||
		!strings.Contains(string(resp.Body), `"predicted_score": NaN}`) {
		t.Fatalf("json %s", resp.Body)
	}

	m, _, _ = loadFixtureModel(t, "multi_softprob", Options{InferenceOutput: []string{"predicted_label", "labels", "probabilities"}})
	resp, err = m.Predict(ctx, &modelserver.Request{ContentType: "text/csv", Accept: ContentJSONLines, Body: []byte(rows)})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(resp.Body)), "\n") {
		var v struct {
			PredictedLabel int       `json:"predicted_label"`
			Labels         []int     `json:"labels"`
			Probabilities  []float64 `json:"probabilities"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("jsonlines %q: %v", l, err)
		}
		best := 0
		for i, p := range v.Probabilities {
			if p > v.Probabilities[best] {
				best = i
			}
		}
		if len(v.Labels) != 3 || v.Labels[2] != 2 || len(v.Probabilities) != 3 || v.PredictedLabel != best {
			t.Fatalf("jsonlines %q", l)
		}
	}

	m, _, _ = loadFixtureModel(t, "count_poisson", Options{InferenceOutput: []string{"predicted_score"}})
	if _, err := m.Predict(ctx, &modelserver.Request{ContentType: "text/csv", Body: []byte(rows)}); modelserver.StatusOf(err) != 500 {
		t.Fatalf("unsupported objective: %v", err)
	}
}
