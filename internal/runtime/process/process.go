// Package process runs model servers as local processes: the runtime for
// images that resolve to a command (the config file's images: catalog and
// berth's built-in model servers).
//
// Every container of an instance is a process of its own, with its own
// ports, started, health-checked, restarted and stopped by the shared
// runtime.Supervisor (a crashed container is restarted alone). Each
// container gets a directory under Options.StateDir holding its
// stdout.log, stderr.log and pid file: the first container's is named for
// the instance, as it always was, the others' for the instance and the
// container. A process gets a minimal environment
// (never berth's own: no AWS credentials, no BERTH_* settings), the
// SageMaker variables SAGEMAKER_BIND_TO_PORT, SAGEMAKER_SAFE_PORT_RANGE and
// SM_MODEL_DIR, and leads its own process group, which is
// what Stop signals and what is killed when the process exits. On Linux
// the group is recorded in the pid file before the process runs its
// first instruction, and processes die with berth: they are forked with
// Pdeathsig=SIGKILL from one dedicated OS thread that lives as long as the
// Runtime, a watchdog process kills the rest of every group (a shell's
// grandchildren) as soon as berth exits, however it exits, and
// Recover kills whatever a crashed berth and its watchdog left behind
// (other systems have none of this; berth is built and tested for Linux).
//
// Ports: every process start takes a fresh lease of 1+SafePorts ports on
// 127.0.0.1, released when the process exits. The first is
// SAGEMAKER_BIND_TO_PORT; the rest, given as SAGEMAKER_SAFE_PORT_RANGE
// ("lo-hi", inclusive), are the process's to use internally. Without
// Options.PortRange the OS picks the bind port (listen on port 0, then
// close) and the safe range is the ports right after it; with a PortRange
// the range is cut into blocks and each block is checked free before use.
// Either way no two live processes of one Runtime share a port, but a port
// is free only when checked: another program can take it before the model
// server binds it. A first start then fails with runtime.ErrStartup; a
// restart is retried, with backoff, on a new lease.
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"sync"
	"time"

	"github.com/berth-io/berth/internal/runtime"
)

var _ runtime.Runtime = (*Runtime)(nil)

// Options configures a Runtime. The zero value of every field but StateDir
// means its default.
type Options struct {
	// StateDir holds one directory per instance (logs, pid file). Required.
	StateDir string
	// Logger receives lifecycle events; nil discards them.
	Logger *slog.Logger
	// PortRange, when set ([lo, hi], inclusive), is where bind ports and
	// safe ranges are allocated, in blocks of 1+SafePorts ports; choose it
	// outside the OS's ephemeral port range, where client connections
	// would take ports from under it. When zero
	// the OS picks a free bind port and the safe range is the SafePorts
	// ports after it; they are never given to another instance of this
	// Runtime but another program may take them.
	PortRange [2]int
	// SafePorts is the size of SAGEMAKER_SAFE_PORT_RANGE, the ports after
	// the bind port that the model server may use internally. Default 10.
	SafePorts int
	// HealthInterval is the time between liveness checks. Default 5s.
	HealthInterval time.Duration
	// PingTimeout bounds one GET /ping. Default 2s.
	PingTimeout time.Duration
	// DialHealth opens the connections of health checks; default a
	// net.Dialer. Tests inject failures through it.
	DialHealth func(ctx context.Context, network, addr string) (net.Conn, error)
	// ReadyPollInterval is the time between GET /ping attempts while an
	// instance starts. Default 100ms.
	ReadyPollInterval time.Duration
	// FailureThreshold is how many liveness checks in a row must fail for
	// an instance to be marked unhealthy and restarted. Default 3.
	FailureThreshold int
	// DefaultStartupTimeout applies when InstanceSpec.StartupTimeout is
	// zero. Default 60s.
	DefaultStartupTimeout time.Duration
	// StopGrace is how long a process has to exit after SIGTERM before it
	// is killed. Default 30s.
	StopGrace time.Duration
	// BackoffMin is the first restart delay; it doubles on every failure
	// up to BackoffMax. Defaults 100ms and 30s.
	BackoffMin, BackoffMax time.Duration
	// BackoffReset is how long a process must stay healthy for the restart
	// delay to go back to BackoffMin. Default 1m.
	BackoffReset time.Duration
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// After waits out a restart delay; default time.After.
	After func(d time.Duration) <-chan time.Time
	// NoWatchdog leaves out the watchdog process that kills every
	// recorded process group as soon as berth exits, even by SIGKILL (on
	// Linux). Without it a model server's own children outlive a killed
	// berth until the next Recover.
	NoWatchdog bool
	// RunAsUser, when berth runs as root, is the user model processes run
	// as: a user name, "uid" or "uid:gid" (see ResolveRunAs). Their
	// supplementary groups are dropped, HOME is that user's home, and
	// the working directory, unless the image sets one, is the model
	// directory (or "/"): the instance directory is berth's. The user
	// must be able to reach the model directory and the image's
	// command. Empty, or when berth is not root: berth's own user.
	RunAsUser string
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SafePorts == 0 {
		o.SafePorts = 10
	}
	so := o.supervisorOptions()
	so.SetDefaults()
	o.HealthInterval, o.PingTimeout, o.ReadyPollInterval = so.HealthInterval, so.PingTimeout, so.ReadyPollInterval
	o.FailureThreshold, o.DefaultStartupTimeout, o.StopGrace = so.FailureThreshold, so.DefaultStartupTimeout, so.StopGrace
	o.BackoffMin, o.BackoffMax, o.BackoffReset, o.Now, o.After = so.BackoffMin, so.BackoffMax, so.BackoffReset, so.Now, so.After
}

// supervisorOptions are the options of the shared supervisor.
func (o *Options) supervisorOptions() runtime.SupervisorOptions {
	return runtime.SupervisorOptions{
		Logger:                o.Logger,
		HealthInterval:        o.HealthInterval,
		PingTimeout:           o.PingTimeout,
		ReadyPollInterval:     o.ReadyPollInterval,
		FailureThreshold:      o.FailureThreshold,
		DefaultStartupTimeout: o.DefaultStartupTimeout,
		StopGrace:             o.StopGrace,
		BackoffMin:            o.BackoffMin,
		BackoffMax:            o.BackoffMax,
		BackoffReset:          o.BackoffReset,
		DialHealth:            o.DialHealth,
		Now:                   o.Now,
		After:                 o.After,
	}
}

// Validate reports the first invalid option.
func (o *Options) Validate() error {
	if o.StateDir == "" {
		return errors.New("process runtime: state dir is required")
	}
	if lo, hi := o.PortRange[0], o.PortRange[1]; lo != 0 || hi != 0 {
		if lo < 1024 || hi > 65535 || hi-lo+1 < 1+max(o.SafePorts, 0) {
			return fmt.Errorf("process runtime: port range %d-%d must lie in 1024-65535 and hold at least %d ports", lo, hi, 1+o.SafePorts)
		}
	}
	if o.SafePorts < 0 || o.SafePorts > 1000 {
		return fmt.Errorf("process runtime: safe ports %d not in 0-1000", o.SafePorts)
	}
	so := o.supervisorOptions()
	if err := so.Validate(); err != nil {
		return fmt.Errorf("process runtime: %w", err)
	}
	return nil
}

// Runtime starts model servers as local processes and keeps them alive.
type Runtime struct {
	opts    Options
	log     *slog.Logger
	ports   *portAllocator
	sup     *runtime.Supervisor
	baseEnv []string

	forks    chan forkRequest
	forkQuit chan struct{}
	quitOnce sync.Once
	forkDone chan struct{}

	watchdog *watchdog // nil without one
	runAs    *RunAs    // nil: berth's own user

	mu        sync.Mutex
	closed    bool
	instances map[string]*Instance // by container directory, one entry per container
}

// New returns a Runtime, creating StateDir if needed. Call Close to stop
// every instance it started.
func New(opts Options) (*Runtime, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(opts.StateDir)
	if err != nil {
		return nil, fmt.Errorf("process runtime: state dir: %w", err)
	}
	opts.StateDir = dir
	runAs, err := ResolveRunAs(opts.RunAsUser, os.Geteuid())
	if err != nil {
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("process runtime: %w", err)
	}
	r := &Runtime{
		opts:      opts,
		log:       opts.Logger.With("component", "runtime/process"),
		ports:     newPortAllocator(opts.PortRange[0], opts.PortRange[1], opts.SafePorts),
		baseEnv:   baseEnv(os.Getenv),
		forks:     make(chan forkRequest),
		forkQuit:  make(chan struct{}),
		forkDone:  make(chan struct{}),
		instances: make(map[string]*Instance),
		runAs:     runAs,
	}
	if !opts.NoWatchdog {
		// Not fatal: the next start-up sweep still finds what a killed
		// berth leaves behind.
		if r.watchdog, err = startWatchdog(dir); err != nil {
			r.log.Warn("no watchdog: children of model processes may outlive a killed berth until it restarts", "err", err)
		}
	}
	so := opts.supervisorOptions()
	so.Logger = r.log
	r.sup = runtime.NewSupervisor(so)
	go r.forker()
	return r, nil
}

// forkRequest asks the forker thread to start a command; record, when
// set, runs with the new pid before the command runs (see startGated).
type forkRequest struct {
	cmd    *exec.Cmd
	record func(pid int) error
	errc   chan error
}

// forker starts every process, from one OS thread that it locks and never
// releases. Pdeathsig is tied to the thread that forked the child, not to
// the process: were children forked from ordinary goroutines, the Go
// runtime could retire that thread (it does when a goroutine exits while
// locked to it) and kill healthy model servers. This thread exits only in
// Close, after every instance has been stopped.
func (r *Runtime) forker() {
	goruntime.LockOSThread()
	// No UnlockOSThread: when this goroutine returns its thread exits too,
	// which is what we want at Close (and it never carries other work).
	defer close(r.forkDone)
	probeGate()
	for {
		select {
		case req := <-r.forks:
			if req.record == nil {
				req.errc <- req.cmd.Start()
				continue
			}
			req.errc <- startGated(req.cmd, req.record)
		case <-r.forkQuit:
			return
		}
	}
}

// startCmd starts cmd on the forker thread, calling record (if not nil)
// with its pid before the command runs.
func (r *Runtime) startCmd(cmd *exec.Cmd, record func(pid int) error) error {
	req := forkRequest{cmd: cmd, record: record, errc: make(chan error, 1)}
	select {
	case r.forks <- req:
		return <-req.errc
	case <-r.forkDone:
		return errors.New("process runtime is closed")
	}
}

// Start launches an instance of spec, one process per container, and
// returns once every one answers GET /ping with 200. The instance lives
// until Stop or Close, independent of ctx; cancelling ctx only abandons
// (and kills) an instance still starting.
func (r *Runtime) Start(ctx context.Context, spec runtime.InstanceSpec) (runtime.Instance, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("start instance: %w", err)
	}
	spec.Containers = slices.Clone(spec.Containers)
	for i, c := range spec.Containers {
		if c.Image.Kind != runtime.KindProcess || len(c.Image.Command) == 0 {
			return nil, fmt.Errorf("start instance %s: image %q is not a local command (kind %q); the process runtime runs only command images, not Docker images", spec.ID, c.Image.Name, c.Image.Kind)
		}
		spec.Containers[i].Image.Command = slices.Clone(c.Image.Command)
	}
	in := &Instance{rt: r, spec: spec}
	drivers := make([]runtime.ContainerDriver, len(spec.Containers))
	for i, c := range spec.Containers {
		in.dirs = append(in.dirs, filepath.Join(r.opts.StateDir, containerDirName(spec.ID, c.Name, i)))
		drivers[i] = &driver{r: r, id: spec.ID, c: c, dir: in.dirs[i]}
	}
	in.Supervised = r.sup.New(spec, drivers, func() { r.forget(in) })

	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fmt.Errorf("start instance %s: process runtime is closed", spec.ID)
	}
	for _, dir := range in.dirs {
		if r.instances[dir] != nil {
			r.mu.Unlock()
			return nil, fmt.Errorf("start instance %s: already running", spec.ID)
		}
	}
	for _, dir := range in.dirs {
		r.instances[dir] = in
	}
	r.mu.Unlock()

	if err := in.Start(ctx); err != nil {
		return nil, err
	}
	return in, nil
}

// Recover kills the model processes an earlier berth left behind (see
// sweep); a process runtime adopts nothing, as its processes are meant to
// die with the berth that started them.
func (r *Runtime) Recover(ctx context.Context) (adopted []runtime.Instance, cleaned int, err error) {
	n, err := sweep(r.opts.StateDir, r.ownsDir, 0, r.log)
	return nil, n, err
}

// Close stops every instance this Runtime started (SIGTERM, then SIGKILL
// after StopGrace or when ctx is done) and releases the forker thread.
// It returns once every process has exited. The Runtime cannot start
// instances afterwards.
func (r *Runtime) Close(ctx context.Context) error {
	r.mu.Lock()
	r.closed = true
	all := make([]*Instance, 0, len(r.instances))
	for _, in := range r.instances {
		if !slices.Contains(all, in) {
			all = append(all, in)
		}
	}
	r.mu.Unlock()

	errs := make([]error, len(all))
	var wg sync.WaitGroup
	for i, in := range all {
		wg.Go(func() { errs[i] = in.Stop(ctx) })
	}
	wg.Wait()

	r.quitOnce.Do(func() { close(r.forkQuit) })
	<-r.forkDone
	if r.watchdog != nil {
		r.watchdog.stop(ctx.Done())
	}
	return errors.Join(errs...)
}

// RunAs returns the user model processes run as, or nil when they run as
// berth's own user.
func (r *Runtime) RunAs() *RunAs { return r.runAs }

func (r *Runtime) forget(in *Instance) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, dir := range in.dirs {
		if r.instances[dir] == in {
			delete(r.instances, dir)
		}
	}
}

func (r *Runtime) ownsDir(dir string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.instances[dir] != nil
}
