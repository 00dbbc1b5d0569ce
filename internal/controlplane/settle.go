package controlplane

import (
	"context"
	"sync"
	"time"
)

// settleNotifier tells waiters that some endpoint's status was written.
// Waiters take the current channel, then read the status; a write after
// the read closes that channel, so no change is missed.
type settleNotifier struct {
	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every status write
	stopped chan struct{} // closed once, when waits must end at once
	stop    sync.Once
}

func newSettleNotifier() *settleNotifier {
	return &settleNotifier{changed: make(chan struct{}), stopped: make(chan struct{})}
}

// wait returns the channel the next status write closes.
func (n *settleNotifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changed
}

// notify wakes every waiter.
func (n *settleNotifier) notify() {
	n.mu.Lock()
	close(n.changed)
	n.changed = make(chan struct{})
	n.mu.Unlock()
}

// transitional reports whether an endpoint in this status is still moving
// toward InService or Failed.
func transitional(status string) bool {
	return status == StatusCreating || status == StatusUpdating || status == StatusSystemUpdating || status == StatusRollingBack
}

// awaitSettled lets CreateEndpoint and the update calls answer once the
// endpoint has settled, when that happens within Options.SettleWait. The
// AWS SDKs' endpoint-in-service waiters describe the endpoint at once and
// then sleep 30 s between polls: an endpoint that was InService after a
// second would otherwise cost a waiter half a minute. The answer is
// SageMaker's either way, only later. No lock is held while waiting, and
// the wait ends at once when the caller goes away (ctx) or the server
// shuts down (StopSettleWaits).
func (s *Service) awaitSettled(ctx context.Context, name string) {
	if s.opts.SettleWait <= 0 {
		return
	}
	timer := time.NewTimer(s.opts.SettleWait)
	defer timer.Stop()
	for {
		changed := s.settle.wait()
		status, ok := s.EndpointStatus(ctx, name)
		if !ok || !transitional(status) {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		case <-s.settle.stopped:
			return
		}
	}
}

// StopSettleWaits makes every CreateEndpoint and update call that waits for
// its endpoint to settle answer at once, and later ones not wait. Call it
// when the server starts shutting down, so those calls do not hold the
// shutdown up; Close calls it too.
func (s *Service) StopSettleWaits() {
	s.settle.stop.Do(func() { close(s.settle.stopped) })
}
