//go:build !linux

package h1

import "syscall"

// rawSyscalls is off here: sockIO uses the connection's Read and Write.
const rawSyscalls = false

func rawRead(fd uintptr, p []byte) (int, syscall.Errno)  { return 0, syscall.ENOSYS }
func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) { return 0, syscall.ENOSYS }
