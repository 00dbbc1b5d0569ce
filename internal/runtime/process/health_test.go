//go:build linux

package process

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/testutil"
)

// TestHealthCheckOwnFault: health checks that fail because berth itself
// cannot open a socket (EMFILE, ENFILE, ENOBUFS) neither mark the instance
// unhealthy nor restart it, and are logged once, not per check; a check
// that fails for the model server's sake still does.
func TestHealthCheckOwnFault(t *testing.T) {
	var fail atomic.Value // the error the dialer returns, or nil to dial
	var dials atomic.Int64
	var d net.Dialer
	opts := fastOptions()
	opts.HealthInterval = 10 * time.Millisecond
	opts.FailureThreshold = 3
	opts.DialHealth = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err, _ := fail.Load().(error); err != nil {
			dials.Add(1)
			return nil, &net.OpError{Op: "dial", Net: network, Err: os.NewSyscallError("socket", err.(syscall.Errno))}
		}
		return d.DialContext(ctx, network, addr)
	}
	var logs testutil.Buffer
	opts.StateDir = t.TempDir()
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r.sup.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Close(ctx)
		if t.Failed() {
			t.Logf("runtime log:\n%s", logs.String())
		}
	})
	in := startInstance(t, r, testSpec(t, "ownfault", nil))
	pid := in.PID()

	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS} {
		fail.Store(error(errno))
		start := dials.Load()
		// Ten times the failure threshold, at least.
		testutil.WaitFor(t, 10*time.Second, func() error {
			if n := dials.Load() - start; n < 10*int64(opts.FailureThreshold) {
				return fmt.Errorf("%d failed health checks so far", n)
			}
			return nil
		})
		if !in.Healthy() || in.Restarts() != 0 || in.PID() != pid {
			t.Fatalf("%v: healthy=%v restarts=%d pid=%d (was %d), want the instance left alone", errno, in.Healthy(), in.Restarts(), in.PID(), pid)
		}
	}
	if n := strings.Count(logs.String(), "health checks skipped"); n != 1 {
		t.Errorf("own-fault health checks logged %d times, want once:\n%s", n, logs.String())
	}

	// A failure that is the model server's still counts.
	fail.Store(error(syscall.ECONNREFUSED))
	testutil.WaitFor(t, 10*time.Second, func() error {
		if in.Restarts() == 0 {
			return fmt.Errorf("not restarted after refused health checks")
		}
		return nil
	})
}
