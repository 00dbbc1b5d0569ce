package process

import "syscall"

// procAttr starts a model server in a process group of its own (so that
// stopping it stops its children) that the kernel kills if berth dies.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
