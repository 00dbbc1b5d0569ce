package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berth-io/berth/internal/runtime"
)

var _ runtime.Instance = (*Instance)(nil)

// Instance is one model server kept alive by the process runtime. Its
// supervising goroutine restarts the process when it exits or fails
// FailureThreshold health checks in a row, with exponential backoff.
type Instance struct {
	rt   *Runtime
	spec runtime.InstanceSpec
	dir  string
	log  *slog.Logger

	healthy  atomic.Bool
	restarts atomic.Int64
	cur      atomic.Pointer[proc] // current process, or the last one while down

	cancel   context.CancelFunc // ends the instance's life: no more restarts
	killNow  chan struct{}      // closed to cut the stop grace period short
	killOnce sync.Once
	done     chan struct{} // closed when supervision has ended and the process is gone
}

func newInstance(r *Runtime, spec runtime.InstanceSpec, dir string) (*Instance, context.Context) {
	life, cancel := context.WithCancel(context.Background())
	return &Instance{
		rt:      r,
		spec:    spec,
		dir:     dir,
		log:     r.log.With("instance", spec.ID),
		cancel:  cancel,
		killNow: make(chan struct{}),
		done:    make(chan struct{}),
	}, life
}

// ID returns the spec's ID.
func (in *Instance) ID() string { return in.spec.ID }

// URL returns the current process's base URL, http://127.0.0.1:<port>. The
// port changes when the process is restarted.
func (in *Instance) URL() string {
	if p := in.cur.Load(); p != nil {
		return p.url
	}
	return ""
}

// Healthy reports whether the instance is up: it answered its last health
// checks (fewer than FailureThreshold failures in a row) and has not exited.
func (in *Instance) Healthy() bool { return in.healthy.Load() }

// Restarts counts the processes started after the first one.
func (in *Instance) Restarts() int { return int(in.restarts.Load()) }

// PID returns the process id of the current (or last) process.
func (in *Instance) PID() int {
	if p := in.cur.Load(); p != nil {
		return p.pid
	}
	return 0
}

// Dir returns the instance directory, which holds stdout.log and
// stderr.log.
func (in *Instance) Dir() string { return in.dir }

// StderrTail returns the last lines the current (or last) process wrote
// to stderr, oldest first.
func (in *Instance) StderrTail() []string {
	if p := in.cur.Load(); p != nil {
		return p.tail.lines()
	}
	return nil
}

// Stop ends the instance: no more restarts, SIGTERM to the process group,
// SIGKILL after StopGrace or as soon as ctx is done. It returns once the
// process has exited; the error reports only a grace period cut short.
func (in *Instance) Stop(ctx context.Context) error {
	in.cancel()
	select {
	case <-in.done:
		return nil
	case <-ctx.Done():
	}
	in.killOnce.Do(func() { close(in.killNow) })
	<-in.done
	return fmt.Errorf("stop instance %s: killed before the grace period ended: %w", in.spec.ID, ctx.Err())
}

// start runs the first process and waits for it to become ready; on
// success it hands the process to a supervising goroutine that lives
// until life is cancelled.
func (in *Instance) start(ctx, life context.Context) error {
	startCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(life, cancel)()

	p, err := in.rt.launch(in.spec, in.dir)
	if err != nil {
		in.finish()
		return fmt.Errorf("%w: %w", runtime.ErrStartup, err)
	}
	in.cur.Store(p)
	in.log.Info("instance starting", "pid", p.pid, "url", p.url)
	if err := in.waitReady(startCtx, p); err != nil {
		in.kill(p)
		in.finish()
		switch {
		case errors.Is(err, runtime.ErrStartup):
			in.log.Warn("instance failed to start", "err", err)
			return err
		case life.Err() != nil:
			return fmt.Errorf("start instance %s: stopped while starting", in.spec.ID)
		default:
			return fmt.Errorf("start instance %s: %w", in.spec.ID, err)
		}
	}
	in.healthy.Store(true)
	in.log.Info("instance ready", "pid", p.pid, "url", p.url)
	go in.supervise(life, p)
	return nil
}

// finish marks the instance gone for good.
func (in *Instance) finish() {
	in.healthy.Store(false)
	in.rt.forget(in)
	close(in.done)
}

// supervise keeps the instance running until ctx is cancelled, then stops
// its process. p is the running, ready process.
func (in *Instance) supervise(ctx context.Context, p *proc) {
	defer in.finish()
	bo := newBackoff(in.rt.opts.BackoffMin, in.rt.opts.BackoffMax, in.rt.opts.BackoffReset)
	for {
		healthySince := in.rt.opts.Now()
		reason := in.watch(ctx, p)
		in.healthy.Store(false)
		in.terminate(p)
		if ctx.Err() != nil {
			in.log.Info("instance stopped", "pid", p.pid)
			return
		}
		healthyFor := in.rt.opts.Now().Sub(healthySince)
		in.log.Warn("instance down, restarting", "pid", p.pid, "reason", reason, "healthy_for", healthyFor)
		bo.failed(healthyFor)
		if p = in.restart(ctx, bo); p == nil {
			return
		}
		in.healthy.Store(true)
	}
}

// watch health-checks p until it exits, fails FailureThreshold checks in a
// row, or ctx is cancelled, and says which.
func (in *Instance) watch(ctx context.Context, p *proc) string {
	tick := time.NewTicker(in.rt.opts.HealthInterval)
	defer tick.Stop()
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return "stopped"
		case <-p.exited:
			return p.exitReason()
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, in.rt.opts.PingTimeout)
		err := in.rt.ping(pctx, p.url)
		cancel()
		switch {
		case ctx.Err() != nil:
			return "stopped"
		case err == nil:
			fails = 0
			continue
		case isOwnFault(err):
			// berth could not even open a socket: that says nothing
			// about the model server, which must not be restarted for it.
			in.rt.logOwnFault(err)
			continue
		}
		fails++
		in.log.Debug("health check failed", "pid", p.pid, "failures", fails, "err", err)
		if fails >= in.rt.opts.FailureThreshold {
			return fmt.Sprintf("%d health checks in a row failed (last error: %v)", fails, err)
		}
	}
}

// restart starts new processes, after backoff delays, until one is ready.
// It returns nil if ctx is cancelled first.
func (in *Instance) restart(ctx context.Context, bo *backoff) *proc {
	for {
		t := time.NewTimer(bo.next())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		p, err := in.rt.launch(in.spec, in.dir)
		if err != nil {
			in.log.Error("restart failed", "err", err)
			continue
		}
		in.restarts.Add(1)
		in.cur.Store(p)
		if err := in.waitReady(ctx, p); err != nil {
			in.kill(p)
			if ctx.Err() != nil {
				return nil
			}
			in.log.Warn("restarted instance did not become ready", "pid", p.pid, "err", err)
			continue
		}
		in.log.Info("instance restarted", "pid", p.pid, "url", p.url, "restarts", in.Restarts())
		return p
	}
}

// waitReady polls GET /ping until it answers 200. It fails with an error
// wrapping runtime.ErrStartup as soon as the process exits or when the
// startup timeout passes, and with ctx's error if ctx ends first.
func (in *Instance) waitReady(ctx context.Context, p *proc) error {
	timeout := in.spec.StartupTimeout
	deadline := time.Now().Add(timeout)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	tick := time.NewTicker(in.rt.opts.ReadyPollInterval)
	defer tick.Stop()
	exited := func() error {
		return fmt.Errorf("%w: %s", runtime.ErrStartup, p.exitReason())
	}

	var lastErr error = errors.New("no health check completed")
	for {
		pingDeadline := time.Now().Add(in.rt.opts.PingTimeout)
		if deadline.Before(pingDeadline) {
			pingDeadline = deadline
		}
		pctx, cancel := context.WithDeadline(ctx, pingDeadline)
		err := in.rt.ping(pctx, p.url)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		lastErr = err
		select {
		case <-p.exited:
			return exited()
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			select {
			case <-p.exited:
				return exited()
			default:
			}
			return fmt.Errorf("%w: health check did not pass within %s (last error: %v)%s",
				runtime.ErrStartup, timeout, lastErr, p.stderrSuffix())
		case <-tick.C:
		}
	}
}

// terminate stops p: SIGTERM to its group, then SIGKILL after StopGrace or
// once Stop's context is done. It returns when p has exited.
func (in *Instance) terminate(p *proc) {
	select {
	case <-p.exited:
		return
	default:
	}
	signalGroup(p, syscall.SIGTERM)
	t := time.NewTimer(in.rt.opts.StopGrace)
	defer t.Stop()
	select {
	case <-p.exited:
		return
	case <-t.C:
		in.log.Warn("process ignored SIGTERM, killing it", "pid", p.pid, "grace", in.rt.opts.StopGrace)
	case <-in.killNow:
	}
	in.kill(p)
}

// kill sends SIGKILL to p's group and waits for p to exit.
func (in *Instance) kill(p *proc) {
	signalGroup(p, syscall.SIGKILL)
	<-p.exited
}

// signalGroup signals p's process group, or p alone if it left the group.
func signalGroup(p *proc, sig syscall.Signal) {
	select {
	case <-p.exited:
		return
	default:
	}
	if err := syscall.Kill(-p.pid, sig); errors.Is(err, syscall.ESRCH) {
		_ = p.cmd.Process.Signal(sig)
	}
}

// isOwnFault reports whether a health check failed for want of berth's
// own resources: no file descriptor (EMFILE, ENFILE), no socket buffer
// (ENOBUFS) or no local port (EADDRNOTAVAIL) to connect from.
func isOwnFault(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

// ownFaultLogEvery bounds how often a health check berth could not make
// is logged.
const ownFaultLogEvery = time.Minute

// logOwnFault logs, at most once per ownFaultLogEvery for the whole
// runtime, that health checks are being skipped.
func (r *Runtime) logOwnFault(err error) {
	now := r.opts.Now().UnixNano()
	last := r.ownFaultLogged.Load()
	if last != 0 && now-last < int64(ownFaultLogEvery) || !r.ownFaultLogged.CompareAndSwap(last, now) {
		return
	}
	r.log.Error("health checks skipped: berth cannot open a connection (out of file descriptors or sockets?); instances are not marked unhealthy for it",
		"err", err, "next_report_after", ownFaultLogEvery)
}

// ping does one GET /ping and reports why it did not answer 200.
func (r *Runtime) ping(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ping", nil)
	if err != nil {
		return err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /ping answered %s", resp.Status)
	}
	return nil
}
