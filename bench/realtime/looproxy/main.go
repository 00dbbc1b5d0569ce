//go:build linux

// Command looproxy is a reference point for bench/realtime/run.sh, not a
// part of berth: the smallest reverse proxy in Go built the way nginx is,
// to tell how much of berth's cost per request is the goroutine-per-
// connection design of its fast path and how much is the machine.
//
// Each of GOMAXPROCS loops owns an edge-triggered epoll set and the client
// and upstream sockets in it; a loop waits for its epoll descriptor through
// the runtime's poller (an epoll set is itself pollable), so no system
// thread blocks, and handles every ready socket inline: no goroutine per
// connection, no park and wake per request, and, like nginx, no read that
// is known to find nothing (a read that returns less than asked drained
// the socket; the next edge says when there is more).
//
// It forwards POST requests with a Content-Length body to one upstream
// (POST /invocations, with the request's Content-Type) over kept-alive
// connections, one request at a time per client connection, and answers
// with the upstream's status, Content-Type and body. It does nothing else:
// no routing, metrics, timeouts, chunked bodies or pipelining; an I/O
// error closes the connections involved, and a malformed message is never
// answered.
//
//	looproxy -listen 127.0.0.1:8081 -upstream 127.0.0.1:8080
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"unsafe"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	upstream := flag.String("upstream", "127.0.0.1:8080", "upstream host:port (IPv4)")
	flag.Parse()
	up, err := net.ResolveTCPAddr("tcp4", *upstream)
	if err != nil {
		fatal(err)
	}
	sa := &syscall.SockaddrInet4{Port: up.Port}
	copy(sa.Addr[:], up.IP.To4())
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fatal(err)
	}
	loops := make([]*loop, runtime.GOMAXPROCS(0))
	for i := range loops {
		if loops[i], err = newLoop(sa); err != nil {
			fatal(err)
		}
		go loops[i].run()
	}
	for i := 0; ; i++ {
		nc, err := ln.Accept()
		if err != nil {
			fatal(err)
		}
		fd, err := detach(nc.(*net.TCPConn))
		if err != nil {
			fmt.Fprintln(os.Stderr, "looproxy:", err)
			continue
		}
		loops[i%len(loops)].adopt(fd)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "looproxy:", err)
	os.Exit(1)
}

// detach returns a non-blocking duplicate of c's socket and closes c, so
// that the runtime's poller no longer watches it.
func detach(c *net.TCPConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := raw.Control(func(s uintptr) { fd, derr = syscall.Dup(int(s)) }); err != nil {
		return -1, err
	}
	c.Close()
	if derr != nil {
		return -1, derr
	}
	syscall.CloseOnExec(fd)
	return fd, syscall.SetNonblock(fd, true)
}

type conn struct {
	fd       int
	upstream bool
	peer     *conn  // the other side of the exchange in flight
	in       []byte // received, not yet consumed
	out      []byte // to write when the socket is writable again
	readable bool   // an edge came since the last read that drained it
}

type loop struct {
	epfd, wake int
	upstream   *syscall.SockaddrInet4
	rc         syscall.RawConn
	conns      map[int]*conn
	idle       []*conn // kept-alive upstream connections
	adopted    chan int
	events     [256]syscall.EpollEvent
	scratch    []byte
}

func newLoop(up *syscall.SockaddrInet4) (*loop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := syscall.SetNonblock(epfd, true); err != nil {
		return nil, err
	}
	wake, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		return nil, errno
	}
	l := &loop{epfd: epfd, wake: int(wake), upstream: up, conns: map[int]*conn{}, adopted: make(chan int, 1024)}
	if err := l.watch(l.wake); err != nil {
		return nil, err
	}
	// A non-blocking descriptor handed to os.NewFile joins the runtime's
	// poller, which then says when the epoll set has events.
	f := os.NewFile(uintptr(epfd), "epoll")
	if l.rc, err = f.SyscallConn(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *loop) watch(fd int) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | -syscall.EPOLLET, Fd: int32(fd)}
	return syscall.EpollCtl(l.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
}

// adopt hands a client socket to the loop (from another goroutine).
func (l *loop) adopt(fd int) {
	l.adopted <- fd
	one := [8]byte{1}
	rawWrite(l.wake, one[:])
}

func (l *loop) run() {
	for {
		_ = l.rc.Read(l.poll)
	}
}

// poll handles every ready event; false asks the poller to wait for more.
func (l *loop) poll(uintptr) bool {
	for {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(l.epfd),
			uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
		if errno != 0 {
			n = 0
		}
		for i := range int(n) {
			ev := &l.events[i]
			fd := int(ev.Fd)
			if fd == l.wake {
				l.takeAdopted()
				continue
			}
			c := l.conns[fd]
			if c == nil {
				continue
			}
			if ev.Events&(syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
				l.drop(c)
				continue
			}
			if ev.Events&syscall.EPOLLOUT != 0 && len(c.out) > 0 && !l.flush(c) {
				continue
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP) != 0 {
				c.readable = true
				l.serve(c)
			}
		}
		if int(n) < len(l.events) {
			return false
		}
	}
}

func (l *loop) takeAdopted() {
	var b [8]byte
	rawRead(l.wake, b[:])
	for {
		select {
		case fd := <-l.adopted:
			c := &conn{fd: fd, in: make([]byte, 0, 4096), readable: true}
			l.conns[fd] = c
			if err := l.watch(fd); err != nil {
				l.drop(c)
				continue
			}
			l.serve(c)
		default:
			return
		}
	}
}

// serve reads what c has and acts on a complete message.
func (l *loop) serve(c *conn) {
	for c.readable {
		if len(c.in) == cap(c.in) {
			c.in = append(c.in, make([]byte, cap(c.in))...)[:len(c.in)]
		}
		room := c.in[len(c.in):cap(c.in)]
		n, errno := rawRead(c.fd, room)
		switch {
		case errno == syscall.EAGAIN:
			c.readable = false
		case errno != 0 || n == 0:
			l.drop(c)
			return
		default:
			c.in = c.in[:len(c.in)+n]
			c.readable = n == len(room)
		}
	}
	head, body, ok := message(c.in)
	if !ok {
		return
	}
	if c.upstream {
		l.answer(c, head, body)
	} else if c.peer == nil {
		l.forward(c, head, body)
	}
}

// forward sends a client's request upstream.
func (l *loop) forward(c *conn, head, body []byte) {
	u := l.upstreamConn()
	if u == nil {
		l.drop(c)
		return
	}
	b := append(l.scratch[:0], "POST /invocations HTTP/1.1\r\nHost: upstream\r\n"...)
	if ct := header(head, "content-type"); ct != nil {
		b = append(append(append(b, "Content-Type: "...), ct...), '\r', '\n')
	}
	b = strconv.AppendInt(append(b, "Content-Length: "...), int64(len(body)), 10)
	b = append(append(b, "\r\n\r\n"...), body...)
	l.scratch = b
	c.in = c.in[:0]
	c.peer, u.peer = u, c
	l.send(u, b)
}

// answer relays an upstream's response to its client.
func (l *loop) answer(u *conn, head, body []byte) {
	c := u.peer
	u.peer = nil
	status := head[len("HTTP/1.1 "):]
	if i := bytes.IndexByte(status, '\r'); i >= 0 {
		status = status[:i]
	}
	b := append(append(append(l.scratch[:0], "HTTP/1.1 "...), status...), "\r\n"...)
	if ct := header(head, "content-type"); ct != nil {
		b = append(append(append(b, "Content-Type: "...), ct...), '\r', '\n')
	}
	b = strconv.AppendInt(append(b, "Content-Length: "...), int64(len(body)), 10)
	b = append(append(b, "\r\n\r\n"...), body...)
	l.scratch = b
	u.in = u.in[:0]
	l.idle = append(l.idle, u)
	if c != nil {
		c.peer = nil
		l.send(c, b)
	}
}

// send writes b to c now, keeping what the socket does not take for its
// next writable edge.
func (l *loop) send(c *conn, b []byte) {
	for len(b) > 0 {
		n, errno := rawWrite(c.fd, b)
		if errno == syscall.EAGAIN {
			c.out = append(c.out[:0], b...)
			return
		}
		if errno != 0 {
			l.drop(c)
			return
		}
		b = b[n:]
	}
}

// flush writes c's pending output; false if c was dropped.
func (l *loop) flush(c *conn) bool {
	b := c.out
	c.out = c.out[:0]
	l.send(c, b)
	return l.conns[c.fd] == c
}

func (l *loop) upstreamConn() *conn {
	for len(l.idle) > 0 {
		u := l.idle[len(l.idle)-1]
		l.idle = l.idle[:len(l.idle)-1]
		if l.conns[u.fd] == u {
			return u
		}
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	// A blocking connect: immediate on loopback, and this is a benchmark.
	if err := syscall.Connect(fd, l.upstream); err != nil {
		syscall.Close(fd)
		return nil
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	syscall.SetNonblock(fd, true)
	u := &conn{fd: fd, upstream: true, in: make([]byte, 0, 4096)}
	l.conns[fd] = u
	if err := l.watch(fd); err != nil {
		l.drop(u)
		return nil
	}
	return u
}

// drop closes c and the connection on the other side of its exchange.
func (l *loop) drop(c *conn) {
	if l.conns[c.fd] != c {
		return
	}
	delete(l.conns, c.fd)
	syscall.Close(c.fd)
	if p := c.peer; p != nil {
		c.peer, p.peer = nil, nil
		l.drop(p)
	}
}

// message splits a complete message with a Content-Length body at the
// start of b into its head and body.
func message(b []byte) (head, body []byte, ok bool) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return nil, nil, false
	}
	head = b[:end+2]
	v := header(head, "content-length")
	if len(v) == 0 || len(v) > 9 {
		return nil, nil, false
	}
	n := 0
	for _, d := range v {
		if d < '0' || d > '9' {
			return nil, nil, false
		}
		n = 10*n + int(d-'0')
	}
	if len(b) < end+4+n {
		return nil, nil, false
	}
	return head, b[end+4 : end+4+n], true
}

// header returns the value of the named header (name in lower case).
func header(head []byte, name string) []byte {
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		colon := bytes.IndexByte(line, ':')
		if colon != len(name) {
			continue
		}
		match := true
		for i := range colon {
			if line[i]|0x20 != name[i] {
				match = false
				break
			}
		}
		if match {
			return bytes.TrimSpace(line[colon+1:])
		}
	}
	return nil
}

func rawRead(fd int, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), errno
}

func rawWrite(fd int, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), errno
}
