package controlplane

import (
	"math"
	"testing"
)

func variants(counts ...int) []*liveVariant {
	var out []*liveVariant
	for i, n := range counts {
		out = append(out, &liveVariant{spec: ProductionVariant{VariantName: string(rune('A' + i))}, weight: 1, want: n})
		for range n {
			out[i].instances = append(out[i].instances, &liveInstance{})
		}
	}
	return out
}

func TestShiftSteps(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	policy := func(tr *TrafficRoutingConfig) *DeploymentConfig {
		return &DeploymentConfig{BlueGreenUpdatePolicy: &BlueGreenUpdatePolicy{TrafficRoutingConfiguration: tr}}
	}
	tests := []struct {
		name   string
		policy *DeploymentConfig
		fleet  []*liveVariant
		want   []float64
	}{
		{"no policy", nil, variants(2), []float64{1}},
		{"all at once", policy(&TrafficRoutingConfig{Type: "ALL_AT_ONCE", WaitIntervalInSeconds: i32(5)}), variants(2), []float64{1}},
		{"canary percent", policy(&TrafficRoutingConfig{Type: "CANARY", CanarySize: &CapacitySize{Type: "CAPACITY_PERCENT", Value: 10}}), variants(4), []float64{0.1, 1}},
		{"canary instances", policy(&TrafficRoutingConfig{Type: "CANARY", CanarySize: &CapacitySize{Type: "INSTANCE_COUNT", Value: 1}}), variants(2, 2), []float64{0.25, 1}},
		{"canary larger than fleet", policy(&TrafficRoutingConfig{Type: "CANARY", CanarySize: &CapacitySize{Type: "INSTANCE_COUNT", Value: 9}}), variants(2), []float64{1}},
		{"linear thirds", policy(&TrafficRoutingConfig{Type: "LINEAR", LinearStepSize: &CapacitySize{Type: "INSTANCE_COUNT", Value: 1}}), variants(3), []float64{1.0 / 3, 2.0 / 3, 1}},
		{"linear percent", policy(&TrafficRoutingConfig{Type: "LINEAR", LinearStepSize: &CapacitySize{Type: "CAPACITY_PERCENT", Value: 50}}), variants(1), []float64{0.5, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := shiftSteps(tt.policy, tt.fleet)
			if len(steps) != len(tt.want) {
				t.Fatalf("steps %+v, want shares %v", steps, tt.want)
			}
			for i, s := range steps {
				if math.Abs(s.share-tt.want[i]) > 1e-9 {
					t.Errorf("step %d share %v, want %v", i, s.share, tt.want[i])
				}
			}
		})
	}
}

func TestMixedTableWeights(t *testing.T) {
	old := variants(1, 1) // A and B, weight 1 each
	old[1].weight = 3
	neu := variants(1)
	neu[0].spec.VariantName = "A"
	shadow := &liveVariant{spec: ProductionVariant{VariantName: "S"}, shadow: true, weight: 1}
	neu = append(neu, shadow)

	ep := mixedTable("e", old, neu, 0.2, nil)
	var total float64
	shares := map[string]float64{}
	for _, v := range ep.Variants {
		total += v.Weight
		shares[v.Name] += v.Weight
	}
	if math.Abs(total-1) > 1e-9 {
		t.Fatalf("weights sum to %v", total)
	}
	// Old fleet keeps its 1:3 split within 80 %; the new fleet has 20 %.
	if math.Abs(shares["B"]-0.6) > 1e-9 || math.Abs(shares["A"]-(0.2+0.2)) > 1e-9 {
		t.Errorf("shares %v", shares)
	}
	if len(ep.Shadows) != 1 || ep.Shadows[0].Name != "S" {
		t.Errorf("shadows %+v", ep.Shadows)
	}
	if ep.Capture != nil {
		t.Error("a nil capturer became a non-nil interface")
	}
}
