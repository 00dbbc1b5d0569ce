// Package testutil holds helpers shared by berth's tests. It imports only
// the standard library, so any package's tests can use it.
package testutil

import (
	"testing"
	"time"
)

// WaitFor polls cond until it returns nil, failing the test with cond's
// last error once timeout has passed. Polling starts at once and backs off
// to every 10 ms, so a condition that is nearly met costs little time and
// a slow one little CPU.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(wait)
		wait = min(2*wait, 10*time.Millisecond)
	}
}
