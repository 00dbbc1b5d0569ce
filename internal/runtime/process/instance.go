package process

import (
	"errors"
	"log/slog"
	"syscall"

	"github.com/berth-io/berth/internal/runtime"
)

var _ runtime.Instance = (*Instance)(nil)

// Instance is one instance run by the process runtime: a process per
// container, each with its own directory (stdout.log, stderr.log, pid
// file) and ports, supervised by the runtime's runtime.Supervisor.
type Instance struct {
	*runtime.Supervised
	rt   *Runtime
	spec runtime.InstanceSpec
	dirs []string // per container, in spec order
}

// proc returns the current (or last) process of the named container.
func (in *Instance) proc(name string) *proc {
	p, _ := in.Run(name).(*proc)
	return p
}

// PID returns the process id of the primary container's current (or
// last) process.
func (in *Instance) PID() int { return in.ContainerPID(in.spec.Containers[0].Name) }

// ContainerPID returns the process id of the named container's current
// (or last) process, or 0.
func (in *Instance) ContainerPID(name string) int {
	if p := in.proc(name); p != nil {
		return p.pid
	}
	return 0
}

// Dir returns the primary container's directory, which holds its
// stdout.log and stderr.log.
func (in *Instance) Dir() string { return in.dirs[0] }

// StderrTail returns the last lines the primary container's current (or
// last) process wrote to stderr, oldest first.
func (in *Instance) StderrTail() []string {
	if p := in.proc(in.spec.Containers[0].Name); p != nil {
		return p.tail.lines()
	}
	return nil
}

// driver starts the processes of one container.
type driver struct {
	r   *Runtime
	id  string
	c   runtime.ContainerSpec
	dir string
}

func (d *driver) Launch() (runtime.ContainerRun, error) {
	p, err := d.r.launch(d.id, d.c, d.dir)
	if err != nil {
		return nil, err // not a typed nil
	}
	return p, nil
}

var _ runtime.ContainerRun = (*proc)(nil)

// Addr returns the process's base URL, http://127.0.0.1:<port>.
func (p *proc) Addr() string { return p.url }

// Exited is closed once the process has been reaped and its ports, log
// files and pid file released.
func (p *proc) Exited() <-chan struct{} { return p.exited }

// ExitReason describes how the process ended, with its last stderr lines.
func (p *proc) ExitReason() string { return p.exitReason() }

// Diagnostics returns the process's last stderr lines, as a suffix.
func (p *proc) Diagnostics() string { return p.stderrSuffix() }

// LogValue describes the process in log lines: its pid and URL.
func (p *proc) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("pid", p.pid), slog.String("url", p.url))
}

// Terminate sends SIGTERM to the process group.
func (p *proc) Terminate() { signalGroup(p, syscall.SIGTERM) }

// Kill sends SIGKILL to the process group.
func (p *proc) Kill() { signalGroup(p, syscall.SIGKILL) }

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
