//go:build !linux

package process

import "syscall"

// procAttr starts a model server in a process group of its own. Only on
// Linux does the kernel kill it when berth dies (and only there do pid
// files, which need /proc, let SweepStrays find it later): elsewhere a
// model server outlives a berth killed with SIGKILL. An orderly exit stops
// every server on any system.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
