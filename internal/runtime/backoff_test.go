package runtime

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	ms := time.Millisecond
	b := newBackoff(100*ms, time.Second, time.Minute)
	steps := []struct {
		healthyFor time.Duration // a failure after this long healthy; <0: no failure recorded
		want       time.Duration
	}{
		{0, 100 * ms},
		{-1, 200 * ms},
		{-1, 400 * ms},
		{-1, 800 * ms},
		{-1, time.Second},
		{-1, time.Second},
		{10 * time.Second, time.Second}, // not healthy long enough to reset
		{time.Minute, 100 * ms},         // reset
		{0, 200 * ms},
	}
	for i, s := range steps {
		if s.healthyFor >= 0 {
			b.failed(s.healthyFor)
		}
		if got := b.next(); got != s.want {
			t.Errorf("step %d: delay %s, want %s", i, got, s.want)
		}
	}
}
