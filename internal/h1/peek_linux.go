//go:build linux

package h1

import (
	"syscall"
	"unsafe"
)

// recvPeek calls recvfrom(fd, b, MSG_PEEK|MSG_DONTWAIT) directly, so that
// checking an idle connection does not allocate.
func recvPeek(fd uintptr, b []byte) (int, error) {
	n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(n), nil
}
