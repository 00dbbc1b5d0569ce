//go:build linux

package h1

import (
	"net"
	"syscall"
)

// tcpNotSentLowat is TCP_NOTSENT_LOWAT from linux/tcp.h.
const tcpNotSentLowat = 25

// setNotSentLowat bounds the unsent bytes nc's socket queues: a write
// waits until fewer than n are queued rather than until a third of a
// send buffer (that autotuning grows to megabytes) has drained.
func setNotSentLowat(nc net.Conn, n int) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpNotSentLowat, n)
	})
}
