package router

import (
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/berth-io/berth/internal/fault"
)

// The picker: which variant and which instance a request goes to, and
// the per-instance cap on requests in flight. Nothing here touches the
// network; the relay (relay.go) sends to what the picker chose.

// pickVariant chooses by weight among the variants, or among the entries
// named target.
func (t *table) pickVariant(target string) (*variant, error) {
	if target != "" {
		var total float64
		var only *variant
		n := 0
		for _, v := range t.variants {
			if strings.EqualFold(v.name, target) {
				total += v.weight
				only = v
				n++
			}
		}
		switch {
		case n == 0:
			return nil, fault.New(fault.Invalid, "Endpoint %s does not have a variant named %s.", t.ep.Name, target)
		case n == 1 || total <= 0:
			return only, nil
		}
		x := rand.Float64() * total
		for _, v := range t.variants {
			if strings.EqualFold(v.name, target) {
				if x < v.weight {
					return v, nil
				}
				x -= v.weight
			}
		}
		return only, nil
	}
	if len(t.variants) == 0 {
		return nil, fault.New(fault.Unavailable, "Endpoint %s has no production variant to route to; retry later.", t.ep.Name)
	}
	if len(t.variants) == 1 {
		return t.variants[0], nil
	}
	if t.total <= 0 {
		return nil, fault.New(fault.Unavailable, "All variants of endpoint %s have weight 0; set a weight with UpdateEndpointWeightsAndCapacities or name a TargetVariant.", t.ep.Name)
	}
	return pickWeighted(t.variants, t.total), nil
}

// pinned returns the variant that routes to inst and inst's state, for a
// request pinned to the instance an earlier hop went to.
func (t *table) pinned(inst Instance) (*variant, *instState, error) {
	for _, v := range t.variants {
		for _, st := range v.insts {
			if st.inst == inst {
				return v, st, nil
			}
		}
	}
	return nil, nil, fault.New(fault.Unavailable, "The instance of endpoint %s that served the previous step is no longer routed to; retry the whole request.", t.ep.Name)
}

func pickWeighted(vs []*variant, total float64) *variant {
	x := rand.Float64() * total
	var last *variant
	for _, v := range vs {
		if v.weight <= 0 {
			continue
		}
		if x < v.weight {
			return v
		}
		x -= v.weight
		last = v
	}
	return last
}

// acquire picks a healthy instance other than exclude and counts the
// request on it; nil when none can take it.
func (v *variant) acquire(exclude *instState) *instState {
	for range len(v.insts) + 1 {
		st := v.pick(exclude)
		if st == nil {
			return nil
		}
		if st.count() {
			return st
		}
	}
	return nil
}

// count counts a request on st, unless st was retired: Drain marks an
// instance retired and then waits for its count, so checking after
// counting closes the race with a table read just before the instance was
// dropped.
func (st *instState) count() bool {
	st.inflight.Add(1)
	if !st.retired.Load() {
		return true
	}
	st.inflight.Add(-1)
	return false
}

func (st *instState) usable() bool { return !st.retired.Load() && st.inst.Healthy() }

func (v *variant) pick(exclude *instState) *instState {
	n := len(v.insts)
	if n == 0 {
		return nil
	}
	usable := func(st *instState) bool { return st != exclude && st.usable() }
	if v.strategy == Random {
		k := rand.IntN(n)
		for i := range n {
			if st := v.insts[(k+i)%n]; usable(st) {
				return st
			}
		}
		return nil
	}
	// Least outstanding requests (those waiting for a slot included: the
	// count is taken before the wait); ties go round-robin from a moving
	// start.
	start := int(v.next.Add(1) % uint32(n))
	var best *instState
	var bestLoad int64
	for i := range n {
		st := v.insts[(start+i)%n]
		if !usable(st) {
			continue
		}
		if l := st.inflight.Load(); best == nil || l < bestLoad {
			best, bestLoad = st, l
		}
	}
	return best
}

// slotWaiter is a capped request queued for a slot on an instance.
type slotWaiter struct {
	limit int
	ready chan struct{} // closed when the slot is granted
}

// takeSlot waits until fewer than limit capped requests run on st, then
// takes a slot, which release gives back. Waiters are served in arrival
// order. The wait ends early, with an error and no slot held, when the
// caller's context ends, the deadline passes or the router abandons its
// invocations; it runs on the caller's goroutine and leaves nothing
// behind.
func (r *Router) takeSlot(ctx context.Context, st *instState, limit int, deadline time.Time) error {
	st.slotMu.Lock()
	if len(st.waiters) == 0 && st.running < limit {
		st.running++
		st.slotMu.Unlock()
		return nil
	}
	w := &slotWaiter{limit: limit, ready: make(chan struct{})}
	st.waiters = append(st.waiters, w)
	st.slotMu.Unlock()

	timer := time.NewTimer(deadline.Sub(r.opts.Now()))
	defer timer.Stop()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-timer.C:
		err = errSlotTimeout
	case <-ctx.Done():
		err = ctx.Err()
	case <-r.abandonCtx.Done():
		err = errAbandoned
	}
	st.slotMu.Lock()
	if i := slices.Index(st.waiters, w); i >= 0 {
		st.waiters = slices.Delete(st.waiters, i, i+1)
		// The waiters behind a stricter head may fit now.
		st.grantLocked()
		st.slotMu.Unlock()
		return err
	}
	st.slotMu.Unlock()
	// The slot was granted as the wait ended: give it back.
	st.releaseSlot()
	return err
}

// releaseSlot gives back a slot taken with takeSlot and hands it to the
// next waiter.
func (st *instState) releaseSlot() {
	st.slotMu.Lock()
	st.running--
	st.grantLocked()
	st.slotMu.Unlock()
}

// grantLocked grants slots to waiters, in order, while the first fits;
// st.slotMu must be held.
func (st *instState) grantLocked() {
	for len(st.waiters) > 0 && st.running < st.waiters[0].limit {
		w := st.waiters[0]
		st.waiters[0] = nil
		st.waiters = st.waiters[1:]
		st.running++
		close(w.ready)
	}
}
