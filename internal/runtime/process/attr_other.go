//go:build !linux

package process

import (
	"os/exec"
	"syscall"
)

// procAttr starts a model server as the leader of a process group of its
// own. Only on Linux does the kernel kill it when berth dies
// (and only there do pid files, which need /proc, let Recover find it
// later): elsewhere a model server outlives a berth killed with SIGKILL.
// An orderly exit stops every server on any system.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// startGated starts cmd and then records it: only Linux can hold a new
// process before its first instruction.
func startGated(cmd *exec.Cmd, record func(pid int) error) error {
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

func probeGate() {}

type watchdog struct{}

// startWatchdog does nothing: without /proc there are no pid files to act
// on.
func startWatchdog(string) (*watchdog, error) { return nil, nil }

func (*watchdog) stop(<-chan struct{}) {}
