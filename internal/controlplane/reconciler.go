package controlplane

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time and makes timers. The reconcile loops, their
// retry backoff, blue/green wait intervals and the unhealthy-instance
// grace period all read it, so tests can move time on instead of sleeping.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// sleepClock waits d on c, or until ctx ends.
func sleepClock(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	select {
	case <-c.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// syncResult is what one reconcile pass over a key reports.
type syncResult struct {
	// after asks for the next pass within this time (a retry or a
	// blue/green step falling due); 0 leaves it to the period.
	after time.Duration
	// gone says the key's resource no longer exists (or needs nothing
	// more): its worker ends, and a later notify starts a new one.
	gone bool
}

// reconciler runs one worker goroutine per key (an endpoint name, later a
// job or queue name). A worker calls sync for its key whenever it is
// notified, when the time sync asked for has come, and every period, and
// never runs two passes of the same key at once; different keys run in
// parallel, so a slow model start on one endpoint delays no other.
//
// sync is level-triggered: it reads the desired state from the store,
// looks at what runs, and moves one step toward the former. Notifications
// coalesce: many changes during a pass cause one more pass, which sees
// them all.
type reconciler struct {
	sync   func(ctx context.Context, key string) syncResult
	clock  Clock
	period time.Duration

	ctx    context.Context // ends every pass and worker; see stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	workers map[string]*worker
}

type worker struct {
	kick   chan struct{}      // holds at most one pending wake-up
	cancel context.CancelFunc // of the pass in flight; nil between passes
}

func newReconciler(clock Clock, period time.Duration, sync func(ctx context.Context, key string) syncResult) *reconciler {
	ctx, cancel := context.WithCancel(context.Background())
	return &reconciler{sync: sync, clock: clock, period: period, ctx: ctx, cancel: cancel, workers: map[string]*worker{}}
}

// notify asks for a pass over key soon, starting its worker if needed.
func (r *reconciler) notify(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx.Err() != nil {
		return
	}
	w := r.workers[key]
	if w == nil {
		w = &worker{kick: make(chan struct{}, 1)}
		r.workers[key] = w
		r.wg.Add(1)
		go r.run(key, w)
	}
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// interrupt cancels the pass in flight over key, if any (a model start
// that may take minutes, say), and asks for a new one. Deleting an
// endpoint uses it, so the deletion need not wait for that start.
func (r *reconciler) interrupt(key string) {
	r.mu.Lock()
	if w := r.workers[key]; w != nil && w.cancel != nil {
		w.cancel()
	}
	r.mu.Unlock()
	r.notify(key)
}

// stop cancels every pass and waits for the workers to end. Later
// notifications are ignored.
func (r *reconciler) stop() {
	r.mu.Lock()
	r.cancel()
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *reconciler) run(key string, w *worker) {
	defer r.wg.Done()
	for {
		select { // this pass covers any wake-up pending now
		case <-w.kick:
		default:
		}
		r.mu.Lock()
		if r.ctx.Err() != nil {
			r.mu.Unlock()
			return
		}
		ctx, cancel := context.WithCancel(r.ctx)
		w.cancel = cancel
		r.mu.Unlock()

		res := r.sync(ctx, key)

		r.mu.Lock()
		w.cancel = nil
		cancel()
		if res.gone {
			select {
			case <-w.kick: // notified during the pass: look again
				r.mu.Unlock()
				continue
			default:
			}
			delete(r.workers, key)
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()

		wait := r.period
		if res.after > 0 && res.after < wait {
			wait = res.after
		}
		select {
		case <-w.kick:
		case <-r.clock.After(wait):
		case <-r.ctx.Done():
			return
		}
	}
}

// retryState spaces out the attempts of something that keeps failing.
type retryState struct {
	attempts int       // failures in a row
	next     time.Time // no new attempt before this
	err      error     // the last failure
}

func (rs *retryState) due(now time.Time) bool { return !now.Before(rs.next) }

// fail records a failure at now: the next attempt waits base doubled per
// failure in a row, up to limit.
func (rs *retryState) fail(err error, now time.Time, base, limit time.Duration) {
	rs.attempts++
	rs.err = err
	d := base
	for i := 1; i < rs.attempts && d < limit; i++ {
		d *= 2
	}
	rs.next = now.Add(min(d, limit))
}

func (rs *retryState) reset() { *rs = retryState{} }
