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

	// WriteRead's request half.
	out         []byte
	wn          int
	werrno      syscall.Errno
	stalled     bool // the socket buffer filled before out was written
	writeReadFn func(fd uintptr) bool
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
			s.writeReadFn = s.doWriteRead
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
	switch errno := rawWriteAll(fd, s.p, &s.n); errno {
	case 0:
		return true
	case syscall.EAGAIN:
		return false // wait until writable, then call again
	default:
		s.errno = errno
		return true
	}
}

// rawWriteAll writes p[*done:], advancing *done, until all of it is
// written (0), the socket buffer is full (EAGAIN) or the write fails.
func rawWriteAll(fd uintptr, p []byte, done *int) syscall.Errno {
	for *done < len(p) {
		n, errno := rawWrite(fd, p[*done:])
		switch errno {
		case 0:
			*done += n
		case syscall.EINTR:
		default:
			return errno
		}
	}
	return 0
}

// WriteRead writes all of out, then reads into in (at least one byte, as
// Read does). werr is the write's error (nothing was read then), rerr the
// read's.
//
// Why one call: a Read right after a request was written finds nothing —
// the answer is not there yet — and costs a system call that returns
// EAGAIN before the goroutine parks. It cannot simply be skipped, because
// each RawConn.Read starts by forgetting readiness the poller reported
// earlier, so data that arrived before it would not wake the wait. Here
// the write happens inside the read's callback, after that reset: every
// byte of the answer arrives after it and wakes the wait, so the first
// read is made only once there is something to read.
func (s *sockIO) WriteRead(out, in []byte) (n int, werr, rerr error) {
	if s.raw == nil || len(out) == 0 || len(in) == 0 {
		if _, werr = s.Write(out); werr != nil {
			return 0, werr, nil
		}
		n, rerr = s.Read(in)
		return n, nil, rerr
	}
	s.out, s.wn, s.werrno, s.stalled = out, 0, 0, false
	s.p, s.n, s.errno = in, 0, 0
	err := s.raw.Read(s.writeReadFn)
	wn, werrno, stalled := s.wn, s.werrno, s.stalled
	n, errno := s.n, s.errno
	s.out, s.p = nil, nil
	switch {
	case werrno != 0:
		return 0, s.opError("write", werrno), nil
	case wn < len(out) && err != nil:
		return 0, err, nil
	case stalled:
		// Rare for a request that fits one write: finish the usual way.
		if _, werr = s.Write(out[wn:]); werr != nil {
			return 0, werr, nil
		}
		n, rerr = s.Read(in)
		return n, nil, rerr
	case err != nil:
		return 0, nil, err
	case errno != 0:
		return 0, nil, s.opError("read", errno)
	case n == 0:
		return 0, nil, io.EOF
	}
	return n, nil, nil
}

func (s *sockIO) doWriteRead(fd uintptr) bool {
	if s.wn == len(s.out) {
		return s.doRead(fd) // woken: the answer (or an error) is there
	}
	raceReleaseIO(fd)
	switch errno := rawWriteAll(fd, s.out, &s.wn); errno {
	case 0:
		return false // written: wait for the answer without reading first
	case syscall.EAGAIN:
		s.stalled = true
		return true
	default:
		s.werrno = errno
		return true
	}
}

// opError wraps errno as net.Conn's methods do, so that errors.Is finds
// the errno (syscall.ECONNRESET, syscall.EPIPE) through it.
func (s *sockIO) opError(op string, errno syscall.Errno) error {
	return &net.OpError{Op: op, Net: s.nc.LocalAddr().Network(), Source: s.nc.LocalAddr(), Addr: s.nc.RemoteAddr(),
		Err: os.NewSyscallError(op, errno)}
}
