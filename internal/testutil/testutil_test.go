package testutil

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestWaitForMet(t *testing.T) {
	var calls atomic.Int32
	WaitFor(t, 5*time.Second, func() error {
		if calls.Add(1) < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if n := calls.Load(); n != 3 {
		t.Errorf("cond called %d times, want 3", n)
	}
}

// recorder stands in for a test to see WaitFor fail.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = format
	panic(r)
}

func TestWaitForTimesOut(t *testing.T) {
	r := &recorder{TB: t}
	start := time.Now()
	func() {
		defer func() {
			if p := recover(); p != r {
				t.Fatalf("WaitFor did not fail the test: %v", p)
			}
		}()
		WaitFor(r, 50*time.Millisecond, func() error { return errors.New("never") })
	}()
	if d := time.Since(start); d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("gave up after %s, want about 50ms", d)
	}
	if r.failed == "" {
		t.Error("no failure reported")
	}
}
