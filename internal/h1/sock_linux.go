//go:build linux

package h1

import (
	"syscall"
	"unsafe"
)

// rawSyscalls: read and write sockets with raw system calls (see sockIO).
const rawSyscalls = true

// rawRead is read(2) as a raw system call: the runtime is not told, which
// is right only because the descriptor is non-blocking (every socket the
// net package opens is), so the call cannot block.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), errno
}

// rawWrite is write(2) as a raw system call (non-blocking, as rawRead).
func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), errno
}
