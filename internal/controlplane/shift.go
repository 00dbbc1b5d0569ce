package controlplane

import (
	"context"
	"fmt"
	"time"

	"github.com/berth-io/berth/internal/router"
	"github.com/berth-io/berth/internal/runtime"
)

// This file is the blue/green traffic shift of UpdateEndpoint, run as
// steps of the reconcile loop. The new (green) fleet starts beside the
// serving (blue) one; once it runs its wanted counts, traffic moves to it
// as the DeploymentConfig says (all at once, canary or linear steps, each
// held for its wait interval), then the new fleet becomes the endpoint's
// and the old one drains, waits out the termination wait and stops. If
// the new fleet cannot start within StartAttempts, or a variant of it has
// no healthy instance while traffic moves, traffic goes back to the old
// fleet and the endpoint stays InService on it with the reason in
// FailureReason.
//
// Each step taken is persisted (UpdateProgress) before its traffic share
// is published. After a restart the loop first brings the old fleet back,
// then the new one, and resumes at the persisted step, whose wait counts
// from when it was first taken: an update in flight when berth died
// completes (or rolls back, as any update, if the new fleet fails then).

// stepUpdate moves the update of le one step: it returns when the loop
// should look again (zero: the period).
func (s *Service) stepUpdate(ctx context.Context, le *liveEndpoint, er *EndpointRecord) time.Time {
	if le.green == nil {
		le.green = &fleet{dep: er.Pending}
	}
	le.green.dep = er.Pending
	up := UpdateProgress{Policy: er.DeploymentConfig} // a body stored before UpdateProgress existed
	if er.Update != nil {
		up = *er.Update
	}
	gs := s.converge(ctx, le.name, le.green)
	if ctx.Err() != nil {
		return time.Time{}
	}
	if len(gs.retired) > 0 {
		s.publish(le)
		s.stopRetired(gs.retired)
	}
	if !gs.done {
		if gs.err != nil && le.green.retry.attempts >= s.opts.StartAttempts {
			s.rollback(le, gs.err)
			return time.Time{}
		}
		return gs.next
	}
	steps := shiftSteps(up.Policy, le.green.variants)
	now := s.clock.Now()
	for {
		if up.Step == 0 || up.Step > len(steps) {
			up.Step, up.StepStarted = 1, now
			s.saveProgress(le.name, up)
		}
		step := steps[up.Step-1]
		le.share = step.share
		s.publish(le)
		if bad := unhealthyVariant(le.green.variants); bad != "" {
			s.rollback(le, fmt.Errorf("variant %s of the new config had no healthy instance while traffic was shifting to it", bad))
			return time.Time{}
		}
		if due := up.StepStarted.Add(step.wait); now.Before(due) {
			return due
		}
		if up.Step == len(steps) {
			s.promote(le, up.Policy)
			return time.Time{}
		}
		up.Step, up.StepStarted = up.Step+1, now
		s.saveProgress(le.name, up)
	}
}

func (s *Service) saveProgress(name string, up UpdateProgress) {
	s.observe(name, func(status string, ep *Endpoint) string {
		ep.Update = &up
		return status
	})
}

// promote makes the new fleet the endpoint's and retires the old one.
func (s *Service) promote(le *liveEndpoint, policy *DeploymentConfig) {
	old := le.blue
	le.blue, le.green, le.share = le.green, nil, 0
	s.publish(le)
	s.observe(le.name, func(status string, ep *Endpoint) string {
		if ep.Pending != nil {
			ep.Deployed = ep.Pending
			ep.EndpointConfigName = ep.Deployed.Config.EndpointConfigName
		}
		ep.Pending, ep.Update = nil, nil
		ep.FailureReason = ""
		ep.Variants = currentVariants(le.blue.variants, nil)
		ep.Instances = instanceRefs(le)
		return StatusInService
	})
	s.log.Info("endpoint updated", "endpoint", le.name, "config", le.blue.dep.Config.EndpointConfigName)
	s.retire(le.name, old, terminationWait(policy))
}

// rollback sends all traffic back to the old fleet and ends the update
// with reason: the endpoint is RollingBack while the new fleet drains and
// stops, then InService on the old one. A restart in between finds no
// update pending and brings the endpoint back InService.
func (s *Service) rollback(le *liveEndpoint, reason error) {
	s.log.Warn("endpoint update failed; rolling back to the previous config", "endpoint", le.name, "err", reason)
	green := le.green
	le.green, le.share = nil, 0
	s.publish(le)
	s.observe(le.name, func(status string, ep *Endpoint) string {
		ep.Pending, ep.Update = nil, nil
		ep.FailureReason = s.failureReason("Update failed and was rolled back: ", reason)
		ep.Instances = instanceRefs(le)
		return StatusRollingBack
	})
	s.drain(le.name, green.instances())
	green.stop(context.Background())
	s.artifactsReleased()
	// The pass's own write then makes the endpoint InService.
}

// abandonGreen retires a new fleet whose update is no longer pending.
func (s *Service) abandonGreen(le *liveEndpoint) {
	green := le.green
	le.green, le.share = nil, 0
	s.publish(le)
	s.retire(le.name, green, 0)
}

// retire stops a fleet that no longer takes traffic, in the background:
// requests in flight on it finish (within DrainTimeout), then wait passes
// (a blue/green termination wait), then it stops. Close cuts the wait.
func (s *Service) retire(endpoint string, f *fleet, wait time.Duration) {
	if f == nil {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		s.drain(endpoint, f.instances())
		sleepClock(s.bgCtx, s.clock, wait)
		f.stop(context.Background())
		s.artifactsReleased()
	}()
}

// drain waits, within the invocation timeout, for requests in flight on
// instances that no longer receive traffic.
func (s *Service) drain(endpoint string, insts []runtime.Instance) {
	if len(insts) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.DrainTimeout)
	defer cancel()
	if err := s.opts.Router.Drain(ctx, asRouter(insts)); err != nil {
		s.log.Warn("instances still busy after the drain timeout; stopping them", "endpoint", endpoint, "err", err)
	}
}

func unhealthyVariant(vs []*liveVariant) string {
	for _, v := range vs {
		healthy := false
		for _, in := range v.instances {
			if in.Healthy() {
				healthy = true
				break
			}
		}
		if !healthy {
			return v.spec.VariantName
		}
	}
	return ""
}

// mixedTable routes a share newShare of the traffic to the variants of
// newFleet and the rest to oldFleet, each fleet keeping its own relative
// weights. It is how blue/green updates shift traffic step by step.
func mixedTable(name string, oldFleet, newFleet []*liveVariant, newShare float64, capture Capturer) *router.Endpoint {
	ep := &router.Endpoint{Name: name}
	if capture != nil {
		ep.Capture = capture
	}
	add := func(fleet []*liveVariant, share float64) {
		if share <= 0 {
			return
		}
		var total float64
		for _, v := range fleet {
			if !v.shadow {
				total += float64(v.weight)
			}
		}
		for _, v := range fleet {
			rv := &router.Variant{Name: v.spec.VariantName, Instances: routerInstances(v.instances), Strategy: strategyOf(v.spec)}
			if v.shadow {
				rv.Weight = float64(v.weight)
				ep.Shadows = append(ep.Shadows, rv)
				continue
			}
			rv.Weight = float64(v.weight)
			if total > 0 && share < 1 {
				rv.Weight = float64(v.weight) / total * share
			}
			ep.Variants = append(ep.Variants, rv)
		}
	}
	add(oldFleet, 1-newShare)
	add(newFleet, newShare)
	return ep
}

func strategyOf(pv ProductionVariant) router.Strategy {
	if pv.RoutingConfig != nil && pv.RoutingConfig.RoutingStrategy == "RANDOM" {
		return router.Random
	}
	return router.LeastOutstanding
}

type shiftStep struct {
	share float64       // of traffic on the new fleet
	wait  time.Duration // before the next step
}

// shiftSteps turns a BlueGreenUpdatePolicy into traffic shares. Without a
// policy, traffic moves all at once with no baking period.
func shiftSteps(policy *DeploymentConfig, fleet []*liveVariant) []shiftStep {
	if policy == nil || policy.BlueGreenUpdatePolicy == nil || policy.BlueGreenUpdatePolicy.TrafficRoutingConfiguration == nil {
		return []shiftStep{{share: 1}}
	}
	tr := policy.BlueGreenUpdatePolicy.TrafficRoutingConfiguration
	var wait time.Duration
	if tr.WaitIntervalInSeconds != nil {
		wait = time.Duration(*tr.WaitIntervalInSeconds) * time.Second
	}
	capacity := 0
	for _, v := range fleet {
		if !v.shadow {
			capacity += v.want
		}
	}
	share := func(c *CapacitySize) float64 {
		if c == nil || capacity == 0 {
			return 1
		}
		if c.Type == "INSTANCE_COUNT" {
			return min(1, float64(c.Value)/float64(capacity))
		}
		return min(1, float64(c.Value)/100)
	}
	switch tr.Type {
	case "CANARY":
		canary := share(tr.CanarySize)
		if canary >= 1 {
			return []shiftStep{{share: 1, wait: wait}}
		}
		return []shiftStep{{share: canary, wait: wait}, {share: 1, wait: wait}}
	case "LINEAR":
		step := share(tr.LinearStepSize)
		var steps []shiftStep
		for f := step; f < 1-1e-9; f += step {
			steps = append(steps, shiftStep{share: f, wait: wait})
		}
		return append(steps, shiftStep{share: 1, wait: wait})
	default: // ALL_AT_ONCE: the wait is a baking period before the old fleet goes
		return []shiftStep{{share: 1, wait: wait}}
	}
}

func terminationWait(policy *DeploymentConfig) time.Duration {
	if policy == nil || policy.BlueGreenUpdatePolicy == nil || policy.BlueGreenUpdatePolicy.TerminationWaitInSeconds == nil {
		return 0
	}
	return time.Duration(*policy.BlueGreenUpdatePolicy.TerminationWaitInSeconds) * time.Second
}
