package controlplane

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-io/berth/internal/fault"
	"github.com/berth-io/berth/internal/store"
)

// This file holds the endpoint API calls. Each validates its request,
// writes the new desired state (with the next Generation) in one store
// transaction, and wakes the endpoint's reconcile loop (reconcile.go),
// which does the work. None of them starts or stops anything itself.

// EndpointRecord is a stored endpoint with its status and times.
type EndpointRecord struct {
	Endpoint
	Status   string
	Created  time.Time
	Modified time.Time
}

// CreateEndpoint records the endpoint as Creating and wakes its loop;
// DescribeEndpoint shows InService or Failed when that ends.
func (s *Service) CreateEndpoint(ctx context.Context, name, configName string, tags []Tag, deploymentConfig *DeploymentConfig) error {
	var v validator
	v.name("endpointName", name)
	v.name("endpointConfigName", configName)
	validateDeploymentConfig(&v, deploymentConfig)
	v.tags("tags", tags)
	if err := v.err(); err != nil {
		return err
	}
	if _, err := s.getEndpoint(ctx, name); err == nil {
		return fault.New(fault.Exists, "Cannot create already existing endpoint %q.", s.ARN("endpoint", name))
	}
	dep, err := s.snapshot(ctx, configName)
	if err != nil {
		return err
	}
	if err := s.checkCapacity(ctx, name, dep); err != nil {
		return err
	}
	ep := Endpoint{
		EndpointName:       name,
		EndpointConfigName: dep.Config.EndpointConfigName,
		Tags:               tags,
		DeploymentConfig:   deploymentConfig,
		Deployed:           dep,
		Variants:           desiredVariants(dep),
		Generation:         1,
	}
	if err := s.create(ctx, kindEndpoint, name, StatusCreating, ep, "endpoint"); err != nil {
		return err
	}
	s.loop.notify(loopKey(name))
	s.awaitSettled(ctx, name)
	return nil
}

// loopKey is the reconcile key of an endpoint: names are unique
// regardless of case.
func loopKey(name string) string { return strings.ToLower(name) }

// snapshot freezes an endpoint config with the models it names.
func (s *Service) snapshot(ctx context.Context, configName string) (*Deployment, error) {
	cfg, err := s.getEndpointConfig(ctx, configName)
	if err != nil {
		return nil, err
	}
	dep := &Deployment{Config: cfg.EndpointConfig, Models: map[string]Model{}}
	for _, pv := range append(cfg.ProductionVariants, cfg.ShadowProductionVariants...) {
		m, err := s.getModel(ctx, pv.ModelName)
		if err != nil {
			return nil, err
		}
		dep.Models[pv.ModelName] = m.Model
	}
	return dep, nil
}

func desiredVariants(dep *Deployment) []VariantState {
	var out []VariantState
	n := len(dep.Config.ProductionVariants)
	for i, pv := range append(dep.Config.ProductionVariants, dep.Config.ShadowProductionVariants...) {
		out = append(out, VariantState{
			VariantName:          pv.VariantName,
			Shadow:               i >= n,
			DesiredWeight:        weightOf(pv),
			DesiredInstanceCount: countOf(pv),
		})
	}
	return out
}

func weightOf(pv ProductionVariant) float32 {
	if pv.InitialVariantWeight == nil {
		return 1
	}
	return *pv.InitialVariantWeight
}

func countOf(pv ProductionVariant) int32 {
	if pv.InitialInstanceCount == nil {
		return 1
	}
	return *pv.InitialInstanceCount
}

// checkCapacity refuses a deployment that would pass MaxInstances.
func (s *Service) checkCapacity(ctx context.Context, replacing string, dep *Deployment) error {
	if s.opts.MaxInstances <= 0 {
		return nil
	}
	want := 0
	for _, pv := range append(dep.Config.ProductionVariants, dep.Config.ShadowProductionVariants...) {
		want += int(countOf(pv))
	}
	used := 0
	recs, err := s.opts.Store.List(ctx, kindEndpoint)
	if err != nil {
		return err
	}
	for _, rec := range recs {
		if strings.EqualFold(rec.Name, replacing) || rec.Status == StatusFailed {
			continue
		}
		var ep Endpoint
		if json.Unmarshal(rec.Body, &ep) == nil {
			for _, vs := range ep.Variants {
				used += int(max(vs.DesiredInstanceCount, vs.CurrentInstanceCount))
			}
		}
	}
	if used+want > s.opts.MaxInstances {
		return fault.New(fault.LimitExceeded, "The account-level service limit 'total instances across all endpoints' is %d Instances, with current utilization of %d Instances and a request delta of %d Instances. Raise limits.max_instances in the berth config file to allow more.", s.opts.MaxInstances, used, want)
	}
	return nil
}

// changeEndpoint reads, changes and writes back an endpoint in one
// transaction. change gets the current status and returns the new one.
func (s *Service) changeEndpoint(ctx context.Context, name string, change func(status string, ep *Endpoint) (string, error)) error {
	_, err := s.opts.Store.Update(ctx, kindEndpoint, name, func(rec *store.Record) error {
		var ep Endpoint
		if err := json.Unmarshal(rec.Body, &ep); err != nil {
			return fmt.Errorf("decode endpoint %q: %w", name, err)
		}
		status, err := change(rec.Status, &ep)
		if err != nil {
			return err
		}
		data, err := json.Marshal(ep)
		if err != nil {
			return err
		}
		rec.Body, rec.Status, rec.Modified = data, status, s.opts.Now()
		return nil
	})
	if err == nil {
		s.settle.notify()
	}
	return err
}

// DescribeEndpoint returns an endpoint.
func (s *Service) DescribeEndpoint(ctx context.Context, name string) (EndpointRecord, error) {
	if err := nameArg("endpointName", name); err != nil {
		return EndpointRecord{}, err
	}
	return s.getEndpoint(ctx, name)
}

// EndpointStatus returns the status of an endpoint, if it exists.
func (s *Service) EndpointStatus(ctx context.Context, name string) (string, bool) {
	rec, err := s.opts.Store.Get(ctx, kindEndpoint, name)
	if err != nil {
		return "", false
	}
	return rec.Status, true
}

func (s *Service) getEndpoint(ctx context.Context, name string) (EndpointRecord, error) {
	rec, err := s.opts.Store.Get(ctx, kindEndpoint, name)
	if errors.Is(err, store.ErrNotFound) {
		return EndpointRecord{}, fault.New(fault.NotFound, "Could not find endpoint %q.", s.ARN("endpoint", name))
	}
	if err != nil {
		return EndpointRecord{}, err
	}
	return decodeEndpoint(rec)
}

func decodeEndpoint(rec store.Record) (EndpointRecord, error) {
	var ep Endpoint
	if err := json.Unmarshal(rec.Body, &ep); err != nil {
		return EndpointRecord{}, fmt.Errorf("decode endpoint %q: %w", rec.Name, err)
	}
	return EndpointRecord{Endpoint: ep, Status: rec.Status, Created: rec.Created, Modified: rec.Modified}, nil
}

// DeleteEndpoint marks the endpoint Deleting; its loop stops its
// instances and removes the record.
func (s *Service) DeleteEndpoint(ctx context.Context, name string) error {
	if err := nameArg("endpointName", name); err != nil {
		return err
	}
	err := s.changeEndpoint(ctx, name, func(status string, ep *Endpoint) (string, error) {
		if status == StatusDeleting {
			return "", fault.New(fault.InUse, "Endpoint %q is already being deleted.", s.ARN("endpoint", name))
		}
		ep.Generation++
		return StatusDeleting, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return fault.New(fault.NotFound, "Could not find endpoint %q.", s.ARN("endpoint", name))
	}
	if err != nil {
		return err
	}
	// A start in flight (which may take the whole startup timeout) is
	// abandoned rather than waited for.
	s.loop.interrupt(loopKey(name))
	return nil
}

// UpdateEndpoint moves an InService endpoint to a new config, blue/green
// (see shift.go). If the new config fails, the endpoint stays InService on
// the old one and FailureReason says why.
func (s *Service) UpdateEndpoint(ctx context.Context, name, configName string, deploymentConfig *DeploymentConfig, retainDeploymentConfig bool) error {
	var v validator
	v.name("endpointName", name)
	v.name("endpointConfigName", configName)
	validateDeploymentConfig(&v, deploymentConfig)
	if err := v.err(); err != nil {
		return err
	}
	cur, err := s.getEndpoint(ctx, name)
	if err != nil {
		return err
	}
	if cur.Status != StatusInService {
		return fault.New(fault.Invalid, "Cannot update in-progress endpoint %q: its status is %s; wait until it is InService.", s.ARN("endpoint", name), cur.Status)
	}
	dep, err := s.snapshot(ctx, configName)
	if err != nil {
		return err
	}
	if err := s.checkCapacity(ctx, name, dep); err != nil {
		return err
	}
	err = s.changeEndpoint(ctx, name, func(status string, ep *Endpoint) (string, error) {
		if status != StatusInService {
			return "", fault.New(fault.Invalid, "Cannot update in-progress endpoint %q.", s.ARN("endpoint", name))
		}
		policy := deploymentConfig
		if retainDeploymentConfig {
			policy = ep.DeploymentConfig
		} else {
			ep.DeploymentConfig = deploymentConfig
		}
		ep.Pending = dep
		ep.Update = &UpdateProgress{Policy: policy}
		ep.FailureReason = ""
		ep.Generation++
		return StatusUpdating, nil
	})
	if err != nil {
		return err
	}
	s.loop.notify(loopKey(name))
	s.awaitSettled(ctx, name)
	return nil
}

// UpdateEndpointWeightsAndCapacities changes variant weights and instance
// counts; the loop applies them.
func (s *Service) UpdateEndpointWeightsAndCapacities(ctx context.Context, name string, desired []DesiredWeightAndCapacity) error {
	var v validator
	v.name("endpointName", name)
	if len(desired) == 0 {
		v.add("Value '[]' at 'desiredWeightsAndCapacities' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	for i, d := range desired {
		f := fmt.Sprintf("desiredWeightsAndCapacities.%d.member", i+1)
		v.name(f+".variantName", d.VariantName)
		if d.DesiredWeight != nil && *d.DesiredWeight < 0 {
			v.add("Value '%g' at '%s.desiredWeight' failed to satisfy constraint: Member must have value greater than or equal to 0", *d.DesiredWeight, f)
		}
		if d.DesiredInstanceCount != nil && *d.DesiredInstanceCount < 1 {
			v.add("Value '%d' at '%s.desiredInstanceCount' failed to satisfy constraint: Member must have value greater than or equal to 1", *d.DesiredInstanceCount, f)
		}
		if d.DesiredWeight == nil && d.DesiredInstanceCount == nil {
			v.add("Value at '%s' failed to satisfy constraint: set DesiredWeight, DesiredInstanceCount or both", f)
		}
	}
	if err := v.err(); err != nil {
		return err
	}
	cur, err := s.getEndpoint(ctx, name)
	if err != nil {
		return err
	}
	if cur.Status != StatusInService {
		return fault.New(fault.Invalid, "Cannot update in-progress endpoint %q: its status is %s; wait until it is InService.", s.ARN("endpoint", name), cur.Status)
	}
	known := map[string]bool{}
	for _, vs := range cur.Variants {
		known[strings.ToLower(vs.VariantName)] = true
	}
	extra := 0
	for _, d := range desired {
		if !known[strings.ToLower(d.VariantName)] {
			return fault.New(fault.Invalid, "The variant(s) \"[%s]\" is/are not present in the endpoint %q.", d.VariantName, s.ARN("endpoint", name))
		}
		for _, vs := range cur.Variants {
			if strings.EqualFold(vs.VariantName, d.VariantName) && d.DesiredInstanceCount != nil {
				extra += int(*d.DesiredInstanceCount - vs.CurrentInstanceCount)
			}
		}
	}
	if extra > 0 && s.opts.MaxInstances > 0 {
		if err := s.checkCapacity(ctx, "", &Deployment{Config: EndpointConfig{ProductionVariants: []ProductionVariant{{InitialInstanceCount: ptr(int32(extra))}}}}); err != nil {
			return err
		}
	}
	err = s.changeEndpoint(ctx, name, func(status string, ep *Endpoint) (string, error) {
		if status != StatusInService {
			return "", fault.New(fault.Invalid, "Cannot update in-progress endpoint %q.", s.ARN("endpoint", name))
		}
		applyDesired(ep, desired)
		ep.Generation++
		return StatusUpdating, nil
	})
	if err != nil {
		return err
	}
	s.loop.notify(loopKey(name))
	s.awaitSettled(ctx, name)
	return nil
}

func ptr[T any](v T) *T { return &v }

// applyDesired writes the desired weights and counts into the endpoint's
// variant states and into its deployed config, which is what the loop
// converges to and what a restart restores.
func applyDesired(ep *Endpoint, desired []DesiredWeightAndCapacity) {
	for _, d := range desired {
		for i := range ep.Variants {
			vs := &ep.Variants[i]
			if !strings.EqualFold(vs.VariantName, d.VariantName) {
				continue
			}
			if d.DesiredWeight != nil {
				vs.DesiredWeight = *d.DesiredWeight
			}
			if d.DesiredInstanceCount != nil {
				vs.DesiredInstanceCount = *d.DesiredInstanceCount
			}
		}
		if ep.Deployed == nil {
			continue
		}
		for i := range ep.Deployed.Config.ProductionVariants {
			pv := &ep.Deployed.Config.ProductionVariants[i]
			if !strings.EqualFold(pv.VariantName, d.VariantName) {
				continue
			}
			if d.DesiredWeight != nil {
				pv.InitialVariantWeight = ptr(*d.DesiredWeight)
			}
			if d.DesiredInstanceCount != nil {
				pv.InitialInstanceCount = ptr(*d.DesiredInstanceCount)
			}
		}
	}
}
