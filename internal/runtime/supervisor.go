package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ContainerDriver starts one container of an instance, once per call: the
// first run and every restart. A runtime implements it (with ContainerRun)
// and leaves health checks, restarts and stopping to the Supervisor.
type ContainerDriver interface {
	// Launch starts a new run of the container and returns at once,
	// without waiting for it to become ready. Its error is reported as
	// the reason the container failed to start.
	Launch() (ContainerRun, error)
}

// ContainerRun is one run of a container: a process, a Docker container.
type ContainerRun interface {
	// Addr is the base URL (http://host:port) the server answers on.
	Addr() string
	// Exited is closed once the run has ended and its resources (ports,
	// log files) are released.
	Exited() <-chan struct{}
	// ExitReason says how the run ended, with any diagnostics, in words
	// fit for a FailureReason. Called only after Exited is closed.
	ExitReason() string
	// Diagnostics is what helps explain a failure while the run is still
	// up, such as "; last stderr lines: ...", or "".
	Diagnostics() string
	// Terminate asks the run to stop (SIGTERM) and returns at once.
	Terminate()
	// Kill ends the run now (SIGKILL) and returns at once.
	Kill()
}

// SupervisorOptions configures a Supervisor. The zero value of every field
// means its default.
type SupervisorOptions struct {
	// Logger receives lifecycle events; nil discards them.
	Logger *slog.Logger
	// HealthInterval is the time between liveness checks. Default 5s.
	HealthInterval time.Duration
	// PingTimeout bounds one GET /ping. Default 2s.
	PingTimeout time.Duration
	// ReadyPollInterval is the time between GET /ping attempts while a
	// container starts. Default 100ms.
	ReadyPollInterval time.Duration
	// FailureThreshold is how many liveness checks in a row must fail for
	// a container to be marked unhealthy and restarted. Default 3.
	FailureThreshold int
	// DefaultStartupTimeout applies when InstanceSpec.StartupTimeout is
	// zero. Default 60s.
	DefaultStartupTimeout time.Duration
	// StopGrace is how long a container has to exit after Terminate
	// before it is killed. Default 30s.
	StopGrace time.Duration
	// BackoffMin is the first restart delay; it doubles on every failure
	// up to BackoffMax. Defaults 100ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// BackoffReset is how long a container must stay healthy for the
	// restart delay to go back to BackoffMin. Default 1m.
	BackoffReset time.Duration
	// DialHealth opens the connections of health checks; default a
	// net.Dialer. Tests inject failures through it.
	DialHealth func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// After waits out a restart delay; default time.After. With Now it
	// lets tests check the backoff without waiting for it.
	After func(d time.Duration) <-chan time.Time
}

// SetDefaults fills in the zero fields.
func (o *SupervisorOptions) SetDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.HealthInterval, 5*time.Second)
	def(&o.PingTimeout, 2*time.Second)
	def(&o.ReadyPollInterval, 100*time.Millisecond)
	def(&o.DefaultStartupTimeout, 60*time.Second)
	def(&o.StopGrace, 30*time.Second)
	def(&o.BackoffMin, 100*time.Millisecond)
	def(&o.BackoffMax, 30*time.Second)
	def(&o.BackoffReset, time.Minute)
	if o.FailureThreshold == 0 {
		o.FailureThreshold = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
}

// Validate reports the first invalid option.
func (o *SupervisorOptions) Validate() error {
	if o.FailureThreshold < 0 {
		return fmt.Errorf("failure threshold %d is negative", o.FailureThreshold)
	}
	for name, d := range map[string]time.Duration{
		"health interval": o.HealthInterval, "ping timeout": o.PingTimeout,
		"ready poll interval": o.ReadyPollInterval, "default startup timeout": o.DefaultStartupTimeout,
		"stop grace": o.StopGrace, "backoff min": o.BackoffMin, "backoff max": o.BackoffMax,
		"backoff reset": o.BackoffReset,
	} {
		if d < 0 {
			return fmt.Errorf("%s %s is negative", name, d)
		}
	}
	if o.BackoffMax != 0 && o.BackoffMin > o.BackoffMax {
		return fmt.Errorf("backoff min %s exceeds max %s", o.BackoffMin, o.BackoffMax)
	}
	return nil
}

// Supervisor health-checks, restarts and stops the containers of the
// instances of one runtime.
type Supervisor struct {
	opts   SupervisorOptions
	log    *slog.Logger
	client *http.Client // health checks only; no keep-alives, so no idle goroutines

	// ownFaultLogged is when a health check berth could not make was
	// last logged (unix nanoseconds), to log that at a bounded rate.
	ownFaultLogged atomic.Int64
}

// NewSupervisor returns a Supervisor; call opts.Validate first.
func NewSupervisor(opts SupervisorOptions) *Supervisor {
	opts.SetDefaults()
	return &Supervisor{
		opts:   opts,
		log:    opts.Logger,
		client: &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil, DialContext: opts.DialHealth}},
	}
}

// SetLogger replaces the logger, for tests that read what was logged.
// Call it before starting instances.
func (s *Supervisor) SetLogger(l *slog.Logger) { s.log = l }

// New returns an instance of spec whose containers run through drivers,
// one per container in spec order, not yet started: call Start. onDone,
// if not nil, runs once when the instance has ended for good (a failed
// start, or Stop) and nothing of it runs any more.
func (s *Supervisor) New(spec InstanceSpec, drivers []ContainerDriver, onDone func()) *Supervised {
	if spec.StartupTimeout == 0 {
		spec.StartupTimeout = s.opts.DefaultStartupTimeout
	}
	life, cancel := context.WithCancel(context.Background())
	in := &Supervised{
		sup:     s,
		spec:    spec,
		log:     s.log.With("instance", spec.ID),
		life:    life,
		cancel:  cancel,
		killNow: make(chan struct{}),
		done:    make(chan struct{}),
		onDone:  onDone,
	}
	for i, d := range drivers {
		c := &container{in: in, name: spec.Containers[i].Name, drv: d, done: make(chan struct{})}
		c.log = in.log
		if len(drivers) > 1 {
			c.log = in.log.With("container", c.name)
		}
		in.containers = append(in.containers, c)
	}
	return in
}

var _ Instance = (*Supervised)(nil)

// Supervised is an instance kept alive by a Supervisor. A container that
// exits, or fails FailureThreshold health checks in a row, is restarted
// alone, after a backoff delay.
type Supervised struct {
	sup        *Supervisor
	spec       InstanceSpec
	log        *slog.Logger
	containers []*container

	life     context.Context
	cancel   context.CancelFunc // ends the instance's life: no more restarts
	detached atomic.Bool        // end supervision without stopping the containers
	killNow  chan struct{}      // closed to cut the stop grace period short
	killOnce sync.Once
	done     chan struct{} // closed when supervision has ended and every container is gone
	onDone   func()
}

// ID returns the spec's ID.
func (in *Supervised) ID() string { return in.spec.ID }

// Spec returns the spec the instance was created with (its startup
// timeout filled in).
func (in *Supervised) Spec() InstanceSpec { return in.spec }

// URL returns the primary container's base URL.
func (in *Supervised) URL() string { return in.containers[0].addr() }

// Containers returns the container names, in spec order.
func (in *Supervised) Containers() []string {
	names := make([]string, len(in.containers))
	for i, c := range in.containers {
		names[i] = c.name
	}
	return names
}

// Addr returns the named container's base URL, or "".
func (in *Supervised) Addr(name string) string {
	if c := in.container(name); c != nil {
		return c.addr()
	}
	return ""
}

// Run returns the current (or last) run of the named container, or nil.
func (in *Supervised) Run(name string) ContainerRun {
	if c := in.container(name); c != nil {
		return c.run()
	}
	return nil
}

func (in *Supervised) container(name string) *container {
	for _, c := range in.containers {
		if c.name == name {
			return c
		}
	}
	return nil
}

// Healthy reports whether every container is up: it answered its last
// health checks (fewer than FailureThreshold failures in a row) and has
// not exited.
func (in *Supervised) Healthy() bool {
	for _, c := range in.containers {
		if !c.healthy.Load() {
			return false
		}
	}
	return true
}

// Restarts counts the container runs started after the first ones.
func (in *Supervised) Restarts() int {
	n := 0
	for _, c := range in.containers {
		n += int(c.restarts.Load())
	}
	return n
}

// Stop ends the instance: no more restarts, Terminate for every
// container, Kill after StopGrace or as soon as ctx is done. It returns
// once every container has exited; the error reports only a grace
// period cut short.
func (in *Supervised) Stop(ctx context.Context) error {
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

// Detach ends supervision and leaves the containers running, for a
// runtime whose containers outlive berth and are adopted by the next one
// (see Runtime.Recover). It returns once supervision has ended.
func (in *Supervised) Detach() {
	in.detached.Store(true)
	in.cancel()
	<-in.done
}

// Done is closed once the instance has ended for good.
func (in *Supervised) Done() <-chan struct{} { return in.done }

// Start runs every container and waits for each to become ready; on
// success each is handed to a supervising goroutine that lives until Stop.
// If one container fails, the others are killed and the error (wrapping
// ErrStartup when the container itself failed) names it.
func (in *Supervised) Start(ctx context.Context) error {
	startCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(in.life, cancel)()

	runs := make([]ContainerRun, len(in.containers))
	errs := make([]error, len(in.containers))
	var wg sync.WaitGroup
	for i, c := range in.containers {
		wg.Go(func() {
			runs[i], errs[i] = c.start(startCtx)
			if errs[i] != nil {
				cancel() // the others need not wait for readiness
			}
		})
	}
	wg.Wait()
	if err := in.startErr(ctx, errs); err != nil {
		for i, c := range in.containers {
			if runs[i] != nil {
				c.kill(runs[i])
			}
			c.healthy.Store(false)
			close(c.done)
		}
		in.finish()
		return err
	}
	for i, c := range in.containers {
		go c.supervise(in.life, runs[i])
	}
	go func() {
		for _, c := range in.containers {
			<-c.done
		}
		in.finish()
	}()
	return nil
}

// startErr picks the error Start reports: a container's own failure
// first, then a Stop during the start, then ctx's end.
func (in *Supervised) startErr(ctx context.Context, errs []error) error {
	var ctxErr error
	for i, err := range errs {
		var se *startupError
		switch {
		case err == nil:
		case errors.As(err, &se):
			if len(in.containers) > 1 {
				err = fmt.Errorf("container %s: %w", in.containers[i].name, se.err)
			} else {
				err = se.err
			}
			in.log.Warn("instance failed to start", "err", err)
			return fmt.Errorf("%w: %w", ErrStartup, err)
		default:
			ctxErr = err
		}
	}
	switch {
	case ctxErr == nil:
		return nil
	case in.life.Err() != nil:
		return fmt.Errorf("start instance %s: stopped while starting", in.spec.ID)
	case ctx.Err() != nil:
		return fmt.Errorf("start instance %s: %w", in.spec.ID, ctx.Err())
	default:
		return fmt.Errorf("start instance %s: %w", in.spec.ID, ctxErr)
	}
}

// finish marks the instance gone for good.
func (in *Supervised) finish() {
	if in.onDone != nil {
		in.onDone()
	}
	close(in.done)
}

// startupError is a container's own failure to start, as opposed to the
// start being abandoned.
type startupError struct{ err error }

func (e *startupError) Error() string { return e.err.Error() }
func (e *startupError) Unwrap() error { return e.err }

// container is one supervised container of an instance.
type container struct {
	in   *Supervised
	name string
	drv  ContainerDriver
	log  *slog.Logger

	healthy  atomic.Bool
	restarts atomic.Int64
	cur      atomic.Pointer[runBox] // current run, or the last one while down

	done chan struct{} // closed when supervision has ended and the run is gone
}

type runBox struct{ r ContainerRun }

func (c *container) run() ContainerRun {
	if b := c.cur.Load(); b != nil {
		return b.r
	}
	return nil
}

func (c *container) addr() string {
	if r := c.run(); r != nil {
		return r.Addr()
	}
	return ""
}

func (c *container) opts() *SupervisorOptions { return &c.in.sup.opts }

// start launches the first run and waits for it to become ready. A
// failure of the container itself is a *startupError.
func (c *container) start(ctx context.Context) (ContainerRun, error) {
	r, err := c.drv.Launch()
	if err != nil {
		return nil, &startupError{err}
	}
	c.cur.Store(&runBox{r})
	c.log.Info("instance starting", runAttr(r))
	if err := c.waitReady(ctx, r); err != nil {
		c.kill(r)
		return nil, err
	}
	c.healthy.Store(true)
	c.log.Info("instance ready", runAttr(r))
	return r, nil
}

// supervise keeps the container running until ctx is cancelled, then
// stops its run (unless the instance is detached). r is the running,
// ready run.
func (c *container) supervise(ctx context.Context, r ContainerRun) {
	defer close(c.done)
	o := c.opts()
	bo := newBackoff(o.BackoffMin, o.BackoffMax, o.BackoffReset)
	healthySince := o.Now() // r is ready
	for {
		reason := c.watch(ctx, r)
		c.healthy.Store(false)
		if ctx.Err() != nil && c.in.detached.Load() {
			c.log.Info("instance detached", runAttr(r))
			return
		}
		c.terminate(r)
		if ctx.Err() != nil {
			c.log.Info("instance stopped", runAttr(r))
			return
		}
		healthyFor := o.Now().Sub(healthySince)
		c.log.Warn("instance down, restarting", runAttr(r), "reason", reason, "healthy_for", healthyFor)
		bo.failed(healthyFor)
		if r = c.restart(ctx, bo); r == nil {
			return
		}
		healthySince = o.Now()
		c.healthy.Store(true)
	}
}

// watch health-checks r until it exits, fails FailureThreshold checks in a
// row, or ctx is cancelled, and says which.
func (c *container) watch(ctx context.Context, r ContainerRun) string {
	o := c.opts()
	tick := time.NewTicker(o.HealthInterval)
	defer tick.Stop()
	fails := 0
	for {
		select {
		case <-ctx.Done():
			return "stopped"
		case <-r.Exited():
			return r.ExitReason()
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, o.PingTimeout)
		err := c.in.sup.ping(pctx, r.Addr())
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
			c.in.sup.logOwnFault(err)
			continue
		}
		fails++
		c.log.Debug("health check failed", runAttr(r), "failures", fails, "err", err)
		if fails >= o.FailureThreshold {
			return fmt.Sprintf("%d health checks in a row failed (last error: %v)", fails, err)
		}
	}
}

// restart starts new runs, after backoff delays, until one is ready. It
// returns nil if ctx is cancelled first.
func (c *container) restart(ctx context.Context, bo *backoff) ContainerRun {
	o := c.opts()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-o.After(bo.next()):
		}
		r, err := c.drv.Launch()
		if err != nil {
			c.log.Error("restart failed", "err", err)
			continue
		}
		c.restarts.Add(1)
		c.cur.Store(&runBox{r})
		if err := c.waitReady(ctx, r); err != nil {
			c.kill(r)
			if ctx.Err() != nil {
				return nil
			}
			c.log.Warn("restarted instance did not become ready", runAttr(r), "err", err)
			continue
		}
		c.log.Info("instance restarted", runAttr(r), "restarts", c.restarts.Load())
		return r
	}
}

// waitReady polls GET /ping until it answers 200. It fails with a
// *startupError as soon as the run exits or when the startup timeout
// passes, and with ctx's error if ctx ends first.
func (c *container) waitReady(ctx context.Context, r ContainerRun) error {
	o := c.opts()
	timeout := c.in.spec.StartupTimeout
	deadline := time.Now().Add(timeout)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	tick := time.NewTicker(o.ReadyPollInterval)
	defer tick.Stop()
	exited := func() error { return &startupError{errors.New(r.ExitReason())} }

	var lastErr error = errors.New("no health check completed")
	for {
		pingDeadline := time.Now().Add(o.PingTimeout)
		if deadline.Before(pingDeadline) {
			pingDeadline = deadline
		}
		pctx, cancel := context.WithDeadline(ctx, pingDeadline)
		err := c.in.sup.ping(pctx, r.Addr())
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		lastErr = err
		select {
		case <-r.Exited():
			return exited()
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
			select {
			case <-r.Exited():
				return exited()
			default:
			}
			return &startupError{fmt.Errorf("health check did not pass within %s (last error: %v)%s",
				timeout, lastErr, r.Diagnostics())}
		case <-tick.C:
		}
	}
}

// terminate stops r: Terminate, then Kill after StopGrace or once Stop's
// context is done. It returns when r has exited.
func (c *container) terminate(r ContainerRun) {
	select {
	case <-r.Exited():
		return
	default:
	}
	r.Terminate()
	t := time.NewTimer(c.opts().StopGrace)
	defer t.Stop()
	select {
	case <-r.Exited():
		return
	case <-t.C:
		c.log.Warn("instance ignored the request to stop, killing it", runAttr(r), "grace", c.opts().StopGrace)
	case <-c.in.killNow:
	}
	c.kill(r)
}

// runAttr describes r in a log line: as it describes itself (a
// slog.LogValuer, such as a process with its pid), or by its address.
func runAttr(r ContainerRun) slog.Attr {
	if _, ok := r.(slog.LogValuer); ok {
		return slog.Any("run", r)
	}
	return slog.String("url", r.Addr())
}

// kill ends r now and waits for it to exit.
func (c *container) kill(r ContainerRun) {
	r.Kill()
	<-r.Exited()
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
// supervisor, that health checks are being skipped.
func (s *Supervisor) logOwnFault(err error) {
	now := s.opts.Now().UnixNano()
	last := s.ownFaultLogged.Load()
	if last != 0 && now-last < int64(ownFaultLogEvery) || !s.ownFaultLogged.CompareAndSwap(last, now) {
		return
	}
	s.log.Error("health checks skipped: berth cannot open a connection (out of file descriptors or sockets?); instances are not marked unhealthy for it",
		"err", err, "next_report_after", ownFaultLogEvery)
}

// ping does one GET /ping and reports why it did not answer 200.
func (s *Supervisor) ping(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/ping", nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
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
