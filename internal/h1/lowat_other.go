//go:build !linux

package h1

import "net"

// setNotSentLowat does nothing here: TCP_NOTSENT_LOWAT is Linux's.
func setNotSentLowat(nc net.Conn, n int) {}
