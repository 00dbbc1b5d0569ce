package xgboost

import (
	"math"
)

// objective holds what prediction needs from an XGBoost objective: how
// base_score maps into margin space and how margins become predictions.
type objective struct {
	name string
	// probToMargin maps base_score (prediction space) to margin space.
	probToMargin func(float32) float32
	// transform turns one row's margins (len = groups) into predictions in
	// place; nil means identity.
	transform func([]float32)
	// multi is true for multi:softmax, whose prediction is one class index
	// per row instead of one value per group.
	argmax bool
}

func identity(x float32) float32 { return x }

func logit(x float32) float32 {
	return float32(-math.Log(float64(1/x - 1)))
}

func logf(x float32) float32 { return float32(math.Log(float64(x))) }

func sigmoid(m []float32) {
	for i, x := range m {
		m[i] = float32(1 / (1 + float64(float32(math.Exp(float64(-x))))))
	}
}

func expAll(m []float32) {
	for i, x := range m {
		m[i] = float32(math.Exp(float64(x)))
	}
}

func hinge(m []float32) {
	for i, x := range m {
		if x > 0 {
			m[i] = 1
		} else {
			m[i] = 0
		}
	}
}

// softmax follows XGBoost: subtract the max, exponentiate in float32 and
// normalise by a double-precision sum.
func softmax(m []float32) {
	wmax := m[0]
	for _, x := range m[1:] {
		wmax = max(wmax, x)
	}
	var sum float64
	for i, x := range m {
		e := float32(math.Exp(float64(x - wmax)))
		m[i] = e
		sum += float64(e)
	}
	s := float32(sum)
	for i := range m {
		m[i] /= s
	}
}

func lookupObjective(name string) (objective, error) {
	o := objective{name: name, probToMargin: identity}
	switch name {
	case "reg:squarederror", "reg:linear", "reg:squaredlogerror", "reg:pseudohubererror",
		"reg:absoluteerror", "rank:pairwise", "rank:ndcg", "rank:map":
	case "reg:logistic", "binary:logistic":
		o.probToMargin, o.transform = logit, sigmoid
	case "binary:logitraw":
		// XGBoost 1.x adds base_score to logitraw margins untransformed.
	case "binary:hinge":
		o.transform = hinge
	case "count:poisson", "reg:gamma", "reg:tweedie", "survival:cox", "survival:aft":
		o.probToMargin, o.transform = logf, expAll
	case "multi:softprob":
		o.transform = softmax
	case "multi:softmax":
		o.argmax = true
	default:
		return o, corrupt("unsupported objective %q", name)
	}
	return o, nil
}
