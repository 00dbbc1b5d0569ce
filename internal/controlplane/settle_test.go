package controlplane

import (
	"context"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/store"
)

// settleService is a Service over a real store holding one endpoint "ep"
// in status Creating, with nothing running: its status changes only when
// the test writes it.
func settleService(t *testing.T, wait time.Duration) *Service {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s := New(Options{Store: st, SettleWait: wait})
	if err := s.create(context.Background(), kindEndpoint, "ep", StatusCreating, Endpoint{EndpointName: "ep"}, "endpoint"); err != nil {
		t.Fatal(err)
	}
	return s
}

// timeAwait runs awaitSettled and returns how long it took.
func timeAwait(ctx context.Context, s *Service) time.Duration {
	start := time.Now()
	s.awaitSettled(ctx, "ep")
	return time.Since(start)
}

func TestAwaitSettled(t *testing.T) {
	const long = 20 * time.Second
	const soon = 3 * time.Second // far below long, far above scheduling noise

	t.Run("status written", func(t *testing.T) {
		s := settleService(t, long)
		time.AfterFunc(100*time.Millisecond, func() { s.observe("ep", func(string, *Endpoint) string { return StatusInService }) })
		if took := timeAwait(context.Background(), s); took > soon {
			t.Errorf("returned %s after the endpoint went InService", took)
		}
	})
	t.Run("deleted meanwhile", func(t *testing.T) {
		s := settleService(t, long)
		time.AfterFunc(100*time.Millisecond, func() {
			s.opts.Store.Update(context.Background(), kindEndpoint, "ep", func(r *store.Record) error {
				r.Status = StatusDeleting
				return nil
			})
			s.settle.notify()
		})
		if took := timeAwait(context.Background(), s); took > soon {
			t.Errorf("returned %s after the endpoint went Deleting", took)
		}
	})
	t.Run("bound", func(t *testing.T) {
		s := settleService(t, 300*time.Millisecond)
		took := timeAwait(context.Background(), s)
		if took < 300*time.Millisecond || took > soon {
			t.Errorf("returned after %s, want about the 300ms bound", took)
		}
	})
	t.Run("caller gone", func(t *testing.T) {
		s := settleService(t, long)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if took := timeAwait(ctx, s); took > soon {
			t.Errorf("returned %s after the caller went away", took)
		}
	})
	t.Run("shutdown", func(t *testing.T) {
		s := settleService(t, long)
		time.AfterFunc(100*time.Millisecond, s.StopSettleWaits)
		if took := timeAwait(context.Background(), s); took > soon {
			t.Errorf("returned %s after StopSettleWaits", took)
		}
		// Later calls do not wait either.
		if took := timeAwait(context.Background(), s); took > soon {
			t.Errorf("a call after StopSettleWaits waited %s", took)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		s := settleService(t, 0)
		if took := timeAwait(context.Background(), s); took > soon {
			t.Errorf("settle wait 0 waited %s", took)
		}
	})
}
