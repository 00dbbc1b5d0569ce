package controlplane

import "testing"

// TestExecutionParametersBounded: a container cannot answer
// /execution-parameters with more requests in flight than the request
// itself could ask for (MaxConcurrentTransforms × MaxPayloadInMB ≤ 100 MB):
// berth holds that many mini-batches in memory.
func TestExecutionParametersBounded(t *testing.T) {
	req := &TransformJobRequest{}
	for _, c := range []struct {
		ep                  execParams
		wantConc, wantPayMB int
	}{
		{execParams{MaxConcurrentTransforms: 1_000_000, MaxPayloadInMB: 100}, 1, 100},
		{execParams{MaxConcurrentTransforms: 1_000_000}, 100 / defaultMaxPayloadMB, defaultMaxPayloadMB},
		{execParams{MaxConcurrentTransforms: 4, MaxPayloadInMB: 25}, 4, 25},
		{execParams{MaxConcurrentTransforms: 2, MaxPayloadInMB: 1000}, 2, defaultMaxPayloadMB},
	} {
		p := jobParams{maxConcurrent: defaultMaxConcurrent, maxPayloadMB: defaultMaxPayloadMB, strategy: "SingleRecord"}
		got := p.withExecutionParameters(req, &c.ep)
		if got.maxConcurrent != c.wantConc || got.maxPayloadMB != c.wantPayMB {
			t.Errorf("%+v: concurrency %d, payload %d MB; want %d, %d", c.ep, got.maxConcurrent, got.maxPayloadMB, c.wantConc, c.wantPayMB)
		}
	}
}
