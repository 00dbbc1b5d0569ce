package controlplane

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/berth-io/berth/internal/artifacts"
)

// ArtifactSources lists the model data that must stay in the artifact
// cache: that of every stored model, and of the models frozen into an
// endpoint's deployed or pending config (an endpoint runs on after its
// model is deleted, and a restart fetches the data again).
func (s *Service) ArtifactSources(ctx context.Context) ([]artifacts.Source, error) {
	var out []artifacts.Source
	add := func(m *Model) {
		for _, c := range s.containers(m) {
			if src, ok := sourceOf(c); ok {
				out = append(out, src)
			}
		}
	}
	models, err := s.opts.Store.List(ctx, kindModel)
	if err != nil {
		return nil, fmt.Errorf("list models: %w", err)
	}
	for _, rec := range models {
		var m Model
		if err := json.Unmarshal(rec.Body, &m); err != nil {
			return nil, fmt.Errorf("decode model %q: %w", rec.Name, err)
		}
		add(&m)
	}
	eps, err := s.opts.Store.List(ctx, kindEndpoint)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	for _, rec := range eps {
		er, err := decodeEndpoint(rec)
		if err != nil {
			return nil, err
		}
		for _, dep := range []*Deployment{er.Deployed, er.Pending} {
			if dep == nil {
				continue
			}
			for _, m := range dep.Models {
				add(&m)
			}
		}
	}
	return out, nil
}

// artifactsReleased tells the artifact cache that a model or instances
// went away, so that what they used may now be evicted.
func (s *Service) artifactsReleased() {
	if t, ok := s.opts.Artifacts.(interface{ TrimSoon() }); ok {
		t.TrimSoon()
	}
}
