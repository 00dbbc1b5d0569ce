package process

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
)

// procAttr starts a model server as the leader of a process group of its
// own (so that stopping it stops its children, and its group can be told
// apart once the leader is gone), which the kernel kills if berth dies.
// It stays in berth's session: a session of its own would also put it in
// a scheduling autogroup of its own where the kernel has them
// (sched_autogroup), which changes how the CPU is shared between berth
// and its models (measured: 20 % fewer invocations per second on two
// cores).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// noGate is set once the kernel refused PTRACE_TRACEME (a seccomp filter,
// Yama's ptrace_scope 3): processes are then recorded just after they
// start instead of just before their first instruction.
var noGate atomic.Bool

// startGated starts cmd and calls record with its pid before the new
// program runs a single instruction of its own, so that a berth killed at
// any moment leaves a pid file for every process group it created. The
// child asks to be traced (PTRACE_TRACEME) before execve; the kernel stops
// it right after the exec; record runs; the child is detached and goes
// on, untraced. It must run on the thread that forks (the forker thread):
// only that thread may wait for and detach the stopped child.
//
// If record fails, the process is killed and reaped and the error
// returned.
func startGated(cmd *exec.Cmd, record func(pid int) error) error {
	if noGate.Load() {
		return startThenRecord(cmd, record)
	}
	cmd.SysProcAttr.Ptrace = true
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	var ws syscall.WaitStatus
	var err error
	for {
		_, err = syscall.Wait4(pid, &ws, syscall.WALL, nil)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	switch {
	case err != nil:
		cmd.Process.Kill()
		cmd.Wait()
		return fmt.Errorf("wait for the new process to start: %w", err)
	case !ws.Stopped():
		// It died before its first instruction (someone killed it) and
		// was reaped here; let cmd release its pipes.
		cmd.Wait()
		return fmt.Errorf("process ended before it started (%v)", ws)
	}
	if err := record(pid); err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		syscall.PtraceDetach(pid)
		cmd.Wait()
		return err
	}
	if err := syscall.PtraceDetach(pid); err != nil {
		syscall.Kill(pid, syscall.SIGKILL)
		cmd.Wait()
		return fmt.Errorf("release the new process: %w", err)
	}
	return nil
}

// probeGate finds out, once per process, whether this system lets a child
// be traced, by starting this very executable traced: it is stopped at
// its first instruction and killed there. Call it on the forker thread.
func probeGate() {
	probeOnce.Do(func() {
		cmd := exec.Command("/proc/self/exe")
		cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			noGate.Store(true)
			return
		}
		var ws syscall.WaitStatus
		for {
			if _, err := syscall.Wait4(cmd.Process.Pid, &ws, syscall.WALL, nil); !errors.Is(err, syscall.EINTR) {
				break
			}
		}
		syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
		if ws.Stopped() {
			syscall.PtraceDetach(cmd.Process.Pid)
		}
		cmd.Wait()
	})
}

var probeOnce sync.Once

// startThenRecord starts cmd and records it afterwards.
func startThenRecord(cmd *exec.Cmd, record func(pid int) error) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := record(cmd.Process.Pid); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return err
	}
	return nil
}
