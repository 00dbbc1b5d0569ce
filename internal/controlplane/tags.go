package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/berth-io/berth/internal/fault"
	"github.com/berth-io/berth/internal/store"
)

var resourceARN = regexp.MustCompile(`^arn:aws[a-z\-]*:sagemaker:([a-z0-9\-]*):([0-9]{12}):(model|endpoint-config|endpoint|transform-job)/(.+)$`)

// taggable resolves a resource ARN to its store kind and name.
func (s *Service) taggable(arn string) (kind, name string, err error) {
	m := resourceARN.FindStringSubmatch(arn)
	if m == nil {
		return "", "", fault.New(fault.Invalid, "1 validation error detected: Value '%s' at 'resourceArn' failed to satisfy constraint: Member must be the ARN of a berth model, endpoint config, endpoint or transform job", arn)
	}
	if m[1] != s.opts.Region || m[2] != s.opts.AccountID {
		return "", "", fault.New(fault.NotFound, "Resource %q does not exist in region %s of account %s.", arn, s.opts.Region, s.opts.AccountID)
	}
	kinds := map[string]string{"model": kindModel, "endpoint-config": kindEndpointConfig, "endpoint": kindEndpoint, "transform-job": kindTransformJob}
	return kinds[m[3]], m[4], nil
}

// changeTags applies fn to the Tags member of a stored resource.
func (s *Service) changeTags(ctx context.Context, arn string, fn func([]Tag) ([]Tag, error)) ([]Tag, error) {
	kind, name, err := s.taggable(arn)
	if err != nil {
		return nil, err
	}
	var result []Tag
	_, err = s.opts.Store.Update(ctx, kind, name, func(rec *store.Record) error {
		var body map[string]json.RawMessage
		if err := json.Unmarshal(rec.Body, &body); err != nil {
			return fmt.Errorf("decode %s %q: %w", kind, name, err)
		}
		var tags []Tag
		if raw, ok := body["Tags"]; ok {
			if err := json.Unmarshal(raw, &tags); err != nil {
				return fmt.Errorf("decode tags of %s %q: %w", kind, name, err)
			}
		}
		tags, err := fn(tags)
		if err != nil {
			return err
		}
		result = tags
		raw, err := json.Marshal(tags)
		if err != nil {
			return err
		}
		if len(tags) == 0 {
			delete(body, "Tags")
		} else {
			body["Tags"] = raw
		}
		rec.Body, err = json.Marshal(body)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil, fault.New(fault.NotFound, "Resource %q does not exist.", arn)
	}
	return result, err
}

// AddTags adds or overwrites tags on a model, endpoint config or endpoint.
func (s *Service) AddTags(ctx context.Context, arn string, add []Tag) ([]Tag, error) {
	var v validator
	v.tags("tags", add)
	if len(add) == 0 {
		v.add("Value '[]' at 'tags' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	_, err := s.changeTags(ctx, arn, func(tags []Tag) ([]Tag, error) {
		for _, t := range add {
			replaced := false
			for i := range tags {
				if tags[i].Key == t.Key {
					tags[i].Value, replaced = t.Value, true
				}
			}
			if !replaced {
				tags = append(tags, t)
			}
		}
		if len(tags) > 50 {
			return nil, fault.New(fault.LimitExceeded, "Resource %q would have %d tags; at most 50 are allowed.", arn, len(tags))
		}
		return tags, nil
	})
	return add, err
}

// DeleteTags removes tags by key; keys that are not there are ignored.
func (s *Service) DeleteTags(ctx context.Context, arn string, keys []string) error {
	if len(keys) == 0 {
		return fault.New(fault.Invalid, "1 validation error detected: Value '[]' at 'tagKeys' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	drop := map[string]bool{}
	for _, k := range keys {
		drop[k] = true
	}
	_, err := s.changeTags(ctx, arn, func(tags []Tag) ([]Tag, error) {
		kept := tags[:0]
		for _, t := range tags {
			if !drop[t.Key] {
				kept = append(kept, t)
			}
		}
		return kept, nil
	})
	return err
}

// ListTags returns a resource's tags.
func (s *Service) ListTags(ctx context.Context, arn string) ([]Tag, error) {
	kind, name, err := s.taggable(arn)
	if err != nil {
		return nil, err
	}
	rec, err := s.opts.Store.Get(ctx, kind, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fault.New(fault.NotFound, "Resource %q does not exist.", arn)
	}
	if err != nil {
		return nil, err
	}
	var body struct{ Tags []Tag }
	if err := json.Unmarshal(rec.Body, &body); err != nil {
		return nil, fmt.Errorf("decode %s %q: %w", kind, strings.ToLower(name), err)
	}
	return body.Tags, nil
}
