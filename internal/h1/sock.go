package h1

import (
	"io"
	"net"
	"os"
	"syscall"
)

// sockIO reads and writes one connection. For a socket it makes the
// read(2) and write(2) calls itself, inside the connection's RawConn
// callbacks, as raw system calls (see rawRead): the runtime poller still
// does the waiting, the deadlines and Close, but a call that returns is
// not bracketed by the runtime's system-call bookkeeping. That matters on
// loopback, where a write runs the receiver's TCP stack and wakes it inside
// the call: long enough for sysmon to take the P away and hand it to
// another thread (see BENCHMARKS.md for what that cost).
//
// A sockIO is used by one goroutine at a time (reads and writes of a
// connection are never concurrent here).
type sockIO struct {
	nc  net.Conn
	raw syscall.RawConn // nil when nc is not a socket or raw calls are off

	// Arguments and results of the callback in flight; fields rather than
	// closures so that a call allocates nothing.
	p       []byte
	n       int
	errno   syscall.Errno
	readFn  func(fd uintptr) bool
	writeFn func(fd uintptr) bool
}

func (s *sockIO) init(nc net.Conn) {
	s.nc = nc
	s.raw = nil
	if !rawSyscalls {
		return
	}
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			s.raw = raw
			s.readFn = s.doRead
			s.writeFn = s.doWrite
		}
	}
}

// Read reads into p as net.Conn's Read does: io.EOF at the end of the
// stream, a *net.OpError otherwise.
func (s *sockIO) Read(p []byte) (int, error) {
	if s.raw == nil || len(p) == 0 {
		return s.nc.Read(p)
	}
	s.p, s.n, s.errno = p, 0, 0
	err := s.raw.Read(s.readFn)
	n, errno := s.n, s.errno
	s.p = nil
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, s.opError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

func (s *sockIO) doRead(fd uintptr) bool {
	for {
		n, errno := rawRead(fd, s.p)
		switch errno {
		case 0:
			s.n = n
			raceAcquireIO(fd)
			return true
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait until readable, then call again
		}
		s.errno = errno
		return true
	}
}

// Write writes all of p, as net.Conn's Write does.
func (s *sockIO) Write(p []byte) (int, error) {
	if s.raw == nil || len(p) == 0 {
		return s.nc.Write(p)
	}
	s.p, s.n, s.errno = p, 0, 0
	err := s.raw.Write(s.writeFn)
	n, errno := s.n, s.errno
	s.p = nil
	switch {
	case err != nil:
		return n, err
	case errno != 0:
		return n, s.opError("write", errno)
	}
	return n, nil
}

func (s *sockIO) doWrite(fd uintptr) bool {
	raceReleaseIO(fd)
	for s.n < len(s.p) {
		n, errno := rawWrite(fd, s.p[s.n:])
		switch errno {
		case 0:
			s.n += n
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait until writable, then call again
		}
		s.errno = errno
		return true
	}
	return true
}

// opError wraps errno as net.Conn's methods do, so that errors.Is finds
// the errno (syscall.ECONNRESET, syscall.EPIPE) through it.
func (s *sockIO) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: s.nc.LocalAddr().Network(), Source: s.nc.LocalAddr(), Addr: s.nc.RemoteAddr(),
		Err: os.NewSyscallError(op, errno)}
}
