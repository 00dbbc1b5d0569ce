//go:build !linux

package h1

import "syscall"

// recvPeek is not implemented here: idle connections are assumed alive and
// a stale one is caught by Do's retry.
func recvPeek(fd uintptr, b []byte) (int, error) { return -1, syscall.EAGAIN }
