//go:build !linux

package h1

import "net"

// Event loops are Linux-only; elsewhere every connection stays on its
// goroutine.
const loopsAvailable = false

type evLoop struct{}

type loopMsgKind uint8

const (
	msgAdopt loopMsgKind = iota
	msgClose
	msgAbandon
	msgKill
)

type loopMsg struct {
	kind   loopMsgKind
	fd     int
	remote net.Addr
}

func newLoops(*Listener, int) []*evLoop { return nil }
func (*evLoop) send(loopMsg) bool       { return false }
func detach(net.Conn) (int, bool)       { return -1, false }
func attach(int) (net.Conn, error)      { return nil, net.ErrClosed }
func closeFD(int)                       {}
