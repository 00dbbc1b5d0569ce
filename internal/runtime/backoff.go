package runtime

import "time"

// backoff computes restart delays: min, doubling up to max, and back to min
// once a process had stayed healthy for resetAfter before it failed.
type backoff struct {
	min, max, resetAfter time.Duration
	cur                  time.Duration
}

func newBackoff(min, max, resetAfter time.Duration) *backoff {
	return &backoff{min: min, max: max, resetAfter: resetAfter, cur: min}
}

// failed records a failure of a process that had been healthy for
// healthyFor (zero if it never became healthy).
func (b *backoff) failed(healthyFor time.Duration) {
	if healthyFor >= b.resetAfter {
		b.cur = b.min
	}
}

// next returns the delay before the next restart and doubles the one after.
func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(b.cur*2, b.max)
	return d
}
