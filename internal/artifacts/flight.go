package artifacts

import (
	"context"
	"errors"
	"sync"
)

// flight coalesces concurrent calls with the same key: the first caller
// (the leader) runs the function with its own context, later callers wait
// for its result. If the leader's context is cancelled, a
// waiter whose own context is still live retries and may become the next
// leader, so one impatient caller cannot fail everybody.
type flight struct {
	mu    sync.Mutex
	calls map[string]*call
}

type call struct {
	done    chan struct{}
	dir     string
	err     error
	waiters int // callers sharing this call besides the leader; for tests
}

func (g *flight) do(ctx context.Context, key string, fn func() (string, error)) (string, error) {
	for {
		g.mu.Lock()
		if g.calls == nil {
			g.calls = map[string]*call{}
		}
		if c, ok := g.calls[key]; ok {
			c.waiters++
			g.mu.Unlock()
			select {
			case <-c.done:
			case <-ctx.Done():
				return "", ctx.Err()
			}
			if c.err != nil && isContextErr(c.err) && ctx.Err() == nil {
				continue // the leader gave up; try again ourselves
			}
			return c.dir, c.err
		}
		c := &call{done: make(chan struct{})}
		g.calls[key] = c
		g.mu.Unlock()

		g.lead(key, c, fn)
		return c.dir, c.err
	}
}

// lead runs fn for call c and releases its waiters, even if fn panics.
func (g *flight) lead(key string, c *call, fn func() (string, error)) {
	defer func() {
		g.mu.Lock()
		delete(g.calls, key)
		g.mu.Unlock()
		close(c.done)
	}()
	c.err = errPanicked // replaced unless fn panics
	c.dir, c.err = fn()
}

var errPanicked = errors.New("artifact fetch panicked")

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
