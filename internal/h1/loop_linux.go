//go:build linux

package h1

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// Event loops for the fast path. A connection that has been served once on
// its goroutine and is idle between requests moves onto one of GOMAXPROCS
// loops; the loop owns the client socket and the upstream sockets in an
// edge-triggered epoll set, waits for that set through the runtime poller
// (an epoll descriptor is itself pollable), and handles every ready socket
// inline: no goroutine per connection, no park and wake per request, and no
// read that cannot find data (a read that returns less than asked drained
// the socket; the next edge says when there is more). The runtime's own
// poller never sees these sockets, so it cannot clear a readiness edge the
// loop still needs.
//
// A loop forwards only what it can finish alone: a complete POST that
// Match and LoopStart accept, to an upstream at a literal address, answered
// with a whole response (Content-Length, chunked, or until close). Any
// other request, and any exchange that ends in an error, goes back to a
// goroutine (resume) with the request's bytes, where Handle or Fail serve it
// exactly as before; so the loop never renders an error itself.

// loopMaxRequest bounds a request the loop buffers; larger ones go back to
// a goroutine, which streams them.
const loopMaxRequest = 1 << 20

// loopMaxResponse bounds an answer the loop buffers; a larger one fails
// the exchange.
const loopMaxResponse = 64 << 20

type loopMsgKind uint8

const (
	msgAdopt   loopMsgKind = iota // take over fd
	msgClose                      // close idle connections, the rest after their response
	msgAbandon                    // fail exchanges in flight
	msgKill                       // close everything now
)

type loopMsg struct {
	kind   loopMsgKind
	fd     int
	remote net.Addr
}

type evLoop struct {
	l       *Listener
	epfd    int
	wakefd  int
	file    *os.File
	rc      syscall.RawConn
	mu      sync.Mutex // guards queue and stopped, for senders
	queue   []loopMsg
	stopped bool
	clients map[int]*loopClient
	ups     map[int]*loopUp
	idle    map[string][]*loopUp // kept-alive upstream connections, LIFO
	events  [128]syscall.EpollEvent
	armed   time.Time // the read deadline set on file
	next    time.Time // earliest timeout of any connection
	closing bool
	exited  bool
	pollFn  func(uintptr) bool
}

type loopClient struct {
	fd         int
	remote     net.Addr
	buf        []byte // input: buf[:w]; while busy, buf[:reqEnd] is the request
	w          int
	readable   bool
	out        []byte // response bytes not yet written: out[off:]
	off        int
	busy       bool // an exchange is in flight (or its response is being written)
	writing    bool
	reqEnd     int
	req        FastRequest
	x          Exchange
	up         *loopUp
	since      time.Time // start of the current wait: idle, partial request, or write
	partial    bool      // buf holds part of a request
	closeAfter bool
}

type loopUp struct {
	fd         int
	addr       string
	client     *loopClient
	connecting bool
	reused     bool
	readable   bool
	out        []byte
	off        int
	buf        []byte
	w          int
	headLen    int // 0 until the head is parsed
	head       respHead
	gotByte    bool
	eof        bool
}

// newLoops starts n loops, or returns nil if epoll is unavailable.
func newLoops(l *Listener, n int) []*evLoop {
	loops := make([]*evLoop, 0, n)
	for range n {
		lp, err := newLoop(l)
		if err != nil {
			l.opts.Logger.Warn("fast-path event loops unavailable", "err", err)
			for _, lp := range loops {
				lp.send(loopMsg{kind: msgKill})
			}
			return nil
		}
		loops = append(loops, lp)
	}
	for _, lp := range loops {
		l.loopsWG.Add(1)
		go lp.run()
	}
	return loops
}

func newLoop(l *Listener) (*evLoop, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wake, _, errno := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if errno != 0 {
		syscall.Close(epfd)
		return nil, errno
	}
	lp := &evLoop{l: l, epfd: epfd, wakefd: int(wake),
		clients: map[int]*loopClient{}, ups: map[int]*loopUp{}, idle: map[string][]*loopUp{}}
	lp.pollFn = lp.poll
	if err := lp.watch(lp.wakefd); err != nil {
		lp.closeFDs()
		return nil, err
	}
	// A non-blocking descriptor given to os.NewFile joins the runtime
	// poller, which then reports when the epoll set has events.
	if err := syscall.SetNonblock(epfd, true); err != nil {
		lp.closeFDs()
		return nil, err
	}
	lp.file = os.NewFile(uintptr(epfd), "epoll")
	if lp.rc, err = lp.file.SyscallConn(); err != nil {
		lp.file.Close()
		syscall.Close(lp.wakefd)
		return nil, err
	}
	return lp, nil
}

func (lp *evLoop) closeFDs() {
	syscall.Close(lp.epfd)
	syscall.Close(lp.wakefd)
}

func (lp *evLoop) watch(fd int) error {
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | -syscall.EPOLLET, Fd: int32(fd)}
	return syscall.EpollCtl(lp.epfd, syscall.EPOLL_CTL_ADD, fd, &ev)
}

// send posts a message to the loop from any goroutine; false if the loop
// has stopped.
func (lp *evLoop) send(m loopMsg) bool {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	if lp.stopped {
		return false
	}
	lp.queue = append(lp.queue, m)
	one := [8]byte{1}
	rawWrite(uintptr(lp.wakefd), one[:])
	return true
}

func (lp *evLoop) run() {
	defer lp.l.loopsWG.Done()
	for !lp.exited {
		err := lp.rc.Read(lp.pollFn)
		if err != nil && !lp.exited {
			// The read deadline (the earliest timeout) passed.
			lp.timeouts(time.Now())
		}
	}
	lp.mu.Lock()
	lp.stopped = true
	late := lp.queue
	lp.queue = nil
	lp.mu.Unlock()
	for _, m := range late {
		if m.kind == msgAdopt { // cannot happen (see Listener.toLoop), but never leak
			syscall.Close(m.fd)
			lp.l.conns.Done()
		}
	}
	lp.file.Close()
	syscall.Close(lp.wakefd)
}

// poll handles every ready event; false asks the poller to wait.
func (lp *evLoop) poll(uintptr) bool {
	for !lp.exited {
		n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_WAIT, uintptr(lp.epfd),
			uintptr(unsafe.Pointer(&lp.events[0])), uintptr(len(lp.events)), 0, 0, 0)
		if errno != 0 {
			n = 0
		}
		for i := range int(n) {
			lp.event(&lp.events[i])
		}
		if int(n) < len(lp.events) {
			break
		}
	}
	return lp.exited
}

func (lp *evLoop) event(ev *syscall.EpollEvent) {
	fd := int(ev.Fd)
	if fd == lp.wakefd {
		lp.messages()
		return
	}
	failed := ev.Events&(syscall.EPOLLERR|syscall.EPOLLHUP) != 0
	in := ev.Events&(syscall.EPOLLIN|syscall.EPOLLRDHUP) != 0 || failed
	outReady := ev.Events&syscall.EPOLLOUT != 0 || failed
	if c := lp.clients[fd]; c != nil {
		if outReady && c.writing {
			lp.writeClient(c)
		}
		if in && lp.clients[fd] == c {
			c.readable = true
			lp.readClient(c)
		}
		return
	}
	if u := lp.ups[fd]; u != nil {
		if outReady && (u.connecting || u.off < len(u.out)) {
			lp.writeUp(u)
		}
		if in && lp.ups[fd] == u {
			u.readable = true
			lp.readUp(u)
		}
	}
}

func (lp *evLoop) messages() {
	var b [8]byte
	rawRead(uintptr(lp.wakefd), b[:])
	lp.mu.Lock()
	queue := lp.queue
	lp.queue = nil
	lp.mu.Unlock()
	for _, m := range queue {
		lp.message(m)
	}
}

func (lp *evLoop) message(m loopMsg) {
	switch m.kind {
	case msgAdopt:
		c := &loopClient{fd: m.fd, remote: m.remote, buf: make([]byte, 4096), since: time.Now(), readable: true}
		if lp.closing {
			lp.closeClient(c)
			return
		}
		lp.clients[m.fd] = c
		if err := lp.watch(m.fd); err != nil {
			lp.closeClient(c)
			return
		}
		lp.schedule(c.since.Add(lp.l.opts.IdleTimeout))
		lp.readClient(c)
	case msgClose:
		lp.closing = true
		for _, c := range lp.clients {
			if !c.busy {
				lp.closeClient(c)
			} else {
				c.closeAfter = true
			}
		}
		lp.exitIfDone()
	case msgAbandon:
		for _, c := range lp.clients {
			if c.busy && !c.writing {
				lp.failExchange(c, ErrLoopAbandoned, false)
			}
		}
	case msgKill:
		lp.closing = true
		for _, c := range lp.clients {
			lp.closeClient(c)
		}
		lp.exitIfDone()
	}
}

// exitIfDone stops a closing loop once it has no client left.
func (lp *evLoop) exitIfDone() {
	if !lp.closing || len(lp.clients) > 0 {
		return
	}
	for _, u := range lp.ups {
		lp.closeUp(u)
	}
	lp.exited = true
}

// ---------------------------------------------------------------- clients

// readClient reads what the client sent and acts on a complete request.
func (lp *evLoop) readClient(c *loopClient) {
	if c.busy {
		return // read on after the response (pipelining, or the client's FIN)
	}
	for c.readable {
		if c.w == len(c.buf) {
			if len(c.buf) >= loopMaxRequest+lp.l.opts.MaxHeaderBytes {
				break
			}
			nb := make([]byte, 2*len(c.buf))
			copy(nb, c.buf[:c.w])
			c.buf = nb
		}
		room := c.buf[c.w:]
		n, errno := rawRead(uintptr(c.fd), room)
		switch {
		case errno == syscall.EAGAIN:
			c.readable = false
		case errno == syscall.EINTR:
		case errno != 0 || n == 0:
			lp.closeClient(c)
			return
		default:
			c.w += n
			c.readable = n == len(room)
		}
	}
	lp.request(c)
}

// request starts the exchange for a complete request in c.buf, or hands
// the connection back to a goroutine for anything the loop does not do.
func (lp *evLoop) request(c *loopClient) {
	if c.w == 0 {
		return
	}
	opts := &lp.l.opts
	end, _, err := findHeaderEnd(c.buf[:c.w], 0)
	if err != nil {
		lp.resume(c, nil)
		return
	}
	if end < 0 {
		if c.w >= opts.MaxHeaderBytes {
			lp.resume(c, nil)
			return
		}
		lp.partial(c)
		return
	}
	req := &c.req
	if !parseRequestHead(c.buf[:end], req) || req.ContentLength > opts.MaxBodyBytes ||
		int64(end)+max(req.ContentLength, 0) > loopMaxRequest {
		lp.resume(c, nil)
		return
	}
	total := end + int(max(req.ContentLength, 0))
	if c.w < total {
		lp.partial(c)
		return
	}
	c.partial = false
	req.Body = c.buf[end:total]
	req.RemoteAddr = c.remote
	if !opts.Match(req) {
		lp.resume(c, nil)
		return
	}
	x := &c.x
	x.reset()
	if !opts.LoopStart(req, x) {
		lp.resume(c, nil)
		return
	}
	c.busy, c.reqEnd, c.closeAfter = true, total, c.closeAfter || req.close
	u := lp.upstream(x.Addr)
	if u == nil {
		x.Retryable = true
		lp.failExchange(c, errDialLoop, false)
		return
	}
	u.client, c.up = c, u
	b := u.out[:0]
	b = append(b, "POST "...)
	b = append(b, x.Path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, x.Host...)
	b = append(b, '\r', '\n')
	b = append(b, x.Header...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(req.Body)), 10)
	b = append(b, "\r\n\r\n"...)
	b = append(b, req.Body...)
	u.out, u.off = b, 0
	x.Sent = time.Now()
	lp.schedule(x.Deadline)
	if !u.connecting {
		lp.writeUp(u)
	}
}

// partial notes that c's request is incomplete: the rest must come within
// the header timeout, counted from the first wait.
func (lp *evLoop) partial(c *loopClient) {
	if !c.partial {
		c.partial = true
		c.since = time.Now()
		lp.schedule(c.since.Add(lp.l.opts.HeaderTimeout))
	}
}

var errDialLoop = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

// respond writes the response for c's finished exchange.
func (lp *evLoop) respond(c *loopClient, x *Exchange) {
	now := time.Now()
	b := c.out[:0]
	b = append(b, "HTTP/1.1 200 OK\r\n"...)
	b = append(b, lp.l.dateHeader(now)...)
	b = append(b, x.RespHeader...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(x.Body)), 10)
	b = append(b, '\r', '\n')
	if c.closeAfter || lp.closing {
		c.closeAfter = true
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, '\r', '\n')
	b = append(b, x.Body...)
	c.out, c.off, c.writing, c.since = b, 0, true, now
	lp.writeClient(c)
}

func (lp *evLoop) writeClient(c *loopClient) {
	for c.off < len(c.out) {
		n, errno := rawWrite(uintptr(c.fd), c.out[c.off:])
		switch errno {
		case 0:
			c.off += n
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return // the next writable edge goes on
		}
		lp.closeClient(c)
		return
	}
	// The response is out: the request's bytes are done with.
	c.writing, c.busy = false, false
	if cap(c.out) > 256<<10 {
		c.out = nil
	}
	copy(c.buf, c.buf[c.reqEnd:c.w])
	c.w -= c.reqEnd
	c.reqEnd = 0
	if c.closeAfter {
		lp.closeClient(c)
		return
	}
	lp.schedule(c.since.Add(lp.l.opts.IdleTimeout))
	lp.readClient(c)
}

// resume hands the client back to a goroutine with its unread bytes, to
// serve the request at the start of them (with err rendered by Fail, if
// set, instead of Handle).
func (lp *evLoop) resume(c *loopClient, err error) {
	delete(lp.clients, c.fd)
	syscall.EpollCtl(lp.epfd, syscall.EPOLL_CTL_DEL, c.fd, nil)
	if c.up != nil {
		c.up.client = nil
		c.up = nil
	}
	pending := append([]byte(nil), c.buf[:c.w]...)
	go lp.l.resume(c.fd, pending, err)
	lp.exitIfDone()
}

func (lp *evLoop) closeClient(c *loopClient) {
	if u := c.up; u != nil {
		c.up, u.client = nil, nil
		lp.closeUp(u) // its answer has nobody to go to
	}
	if c.busy && !c.writing {
		// The exchange never finished: let the handler release it.
		c.x.Err, c.x.Done = net.ErrClosed, time.Now()
		_ = lp.l.opts.LoopFinish(&c.x)
	}
	if lp.clients[c.fd] == c {
		delete(lp.clients, c.fd)
	}
	syscall.Close(c.fd)
	lp.l.conns.Done()
	lp.exitIfDone()
}

// ---------------------------------------------------------------- upstreams

// upstream returns an idle kept-alive connection to addr or starts a new
// one; nil if addr is not a literal address or the socket fails.
func (lp *evLoop) upstream(addr string) *loopUp {
	idle := lp.idle[addr]
	for len(idle) > 0 {
		u := idle[len(idle)-1]
		idle = idle[:len(idle)-1]
		lp.idle[addr] = idle
		if lp.ups[u.fd] == u {
			u.reused = true
			return u
		}
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil
	}
	var sa syscall.Sockaddr
	family := syscall.AF_INET
	if ap.Addr().Is4() {
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	} else {
		family = syscall.AF_INET6
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	u := &loopUp{fd: fd, addr: addr, buf: make([]byte, 4096)}
	switch err := syscall.Connect(fd, sa); err {
	case nil:
	case syscall.EINPROGRESS:
		u.connecting = true
	default:
		syscall.Close(fd)
		return nil
	}
	lp.ups[fd] = u
	if err := lp.watch(fd); err != nil {
		lp.closeUp(u)
		return nil
	}
	return u
}

func (lp *evLoop) writeUp(u *loopUp) {
	if u.connecting {
		soErr, err := syscall.GetsockoptInt(u.fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
		if err == nil && soErr == int(syscall.EINPROGRESS) {
			return
		}
		if err != nil || soErr != 0 {
			lp.upFailed(u, errDialLoop, true)
			return
		}
		u.connecting = false
	}
	for u.off < len(u.out) {
		n, errno := rawWrite(uintptr(u.fd), u.out[u.off:])
		switch errno {
		case 0:
			u.off += n
			continue
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return
		}
		lp.upFailed(u, os.NewSyscallError("write", errno), !u.gotByte)
		return
	}
}

// readUp reads the upstream's answer and finishes the exchange once it is
// whole.
func (lp *evLoop) readUp(u *loopUp) {
	for u.readable && !u.eof {
		if u.w == len(u.buf) {
			if len(u.buf) >= loopMaxResponse {
				lp.upFailed(u, ErrBodyTooLarge, false)
				return
			}
			nb := make([]byte, min(2*len(u.buf), loopMaxResponse))
			copy(nb, u.buf[:u.w])
			u.buf = nb
		}
		room := u.buf[u.w:]
		n, errno := rawRead(uintptr(u.fd), room)
		switch {
		case errno == syscall.EAGAIN:
			u.readable = false
		case errno == syscall.EINTR:
		case errno != 0:
			lp.upFailed(u, os.NewSyscallError("read", errno), !u.gotByte)
			return
		case n == 0:
			u.eof = true
		default:
			u.w += n
			u.gotByte = true
			u.readable = n == len(room)
		}
	}
	if u.client == nil {
		if u.w > 0 || u.eof {
			lp.closeUp(u) // an idle connection that spoke or closed
		}
		return
	}
	lp.answer(u)
}

// answer finishes the exchange if u holds a whole answer.
func (lp *evLoop) answer(u *loopUp) {
	for u.headLen == 0 {
		end, _, err := findHeaderEnd(u.buf[:u.w], 0)
		if err == nil && end < 0 && u.w >= 64<<10 {
			err = ErrHeaderTooLarge
		}
		if err != nil {
			lp.upFailed(u, err, false)
			return
		}
		if end < 0 {
			if u.eof {
				lp.upFailed(u, errEOFBeforeAnswer, !u.gotByte)
			}
			return
		}
		if err := parseResponseHead(u.buf[:end], &u.head); err != nil {
			lp.upFailed(u, err, false)
			return
		}
		if u.head.status >= 200 {
			u.headLen = end
			break
		}
		// 1xx: drop it and read on.
		copy(u.buf, u.buf[end:u.w])
		u.w -= end
	}
	h := &u.head
	data := u.buf[u.headLen:u.w]
	var body []byte
	rest := 0 // bytes after the answer
	switch {
	case h.status == 204 || h.status == 304:
		body = nil
		rest = len(data)
	case h.chunked:
		b, used, ok, err := dechunk(data)
		if err != nil {
			lp.upFailed(u, err, false)
			return
		}
		if !ok {
			if u.eof {
				lp.upFailed(u, errEOFBeforeAnswer, false)
			}
			return
		}
		body, rest = b, len(data)-used
	case h.contentLength >= 0:
		if int64(len(data)) < h.contentLength {
			if u.eof {
				lp.upFailed(u, errEOFBeforeAnswer, false)
			}
			return
		}
		body, rest = data[:h.contentLength], len(data)-int(h.contentLength)
	default: // until close
		if !u.eof {
			return
		}
		body = data
		h.close = true
	}
	c := u.client
	u.client, c.up = nil, nil
	x := &c.x
	x.Status, x.Body, x.head, x.Done = h.status, body, u.buf[:u.headLen], time.Now()
	reusable := !h.close && !h.http10 && rest == 0 && !u.eof
	err := lp.l.opts.LoopFinish(x)
	// Reset u for its next request only after LoopFinish has read the body.
	u.headLen, u.w, u.gotByte, u.off, u.out = 0, 0, false, 0, u.out[:0]
	if reusable && !lp.closing {
		lp.idle[u.addr] = append(lp.idle[u.addr], u)
	} else {
		lp.closeUp(u)
	}
	if err != nil {
		lp.resume(c, errorOrNil(err))
		return
	}
	lp.respond(c, x)
}

var errEOFBeforeAnswer = &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}

// errorOrNil maps ErrLoopRetry to "serve afresh" (nil) for resume.
func errorOrNil(err error) error {
	if err == ErrLoopRetry {
		return nil
	}
	return err
}

// upFailed ends the exchange on u with err and closes u.
func (lp *evLoop) upFailed(u *loopUp, err error, beforeAnswer bool) {
	c := u.client
	u.client = nil
	// A request on a kept-alive connection that broke before any answer
	// byte may be sent again; so may one whose connection never opened.
	retry := beforeAnswer && (u.reused || u.connecting || err == errDialLoop)
	lp.closeUp(u)
	if c != nil {
		c.up = nil
		lp.failExchange(c, err, retry)
	}
}

// failExchange ends c's exchange with err: LoopFinish records it and says
// how the client is answered, on a goroutine.
func (lp *evLoop) failExchange(c *loopClient, err error, retryable bool) {
	if u := c.up; u != nil {
		c.up, u.client = nil, nil
		lp.closeUp(u)
	}
	x := &c.x
	x.Err, x.Done = err, time.Now()
	x.Retryable = x.Retryable || retryable
	ferr := lp.l.opts.LoopFinish(x)
	if ferr == nil {
		ferr = err
	}
	lp.resume(c, errorOrNil(ferr))
}

func (lp *evLoop) closeUp(u *loopUp) {
	if lp.ups[u.fd] != u {
		return
	}
	delete(lp.ups, u.fd)
	syscall.Close(u.fd)
}

// ---------------------------------------------------------------- timeouts

// schedule makes sure the loop wakes by t.
func (lp *evLoop) schedule(t time.Time) {
	if t.IsZero() {
		return
	}
	if lp.next.IsZero() || t.Before(lp.next) {
		lp.next = t
	}
	if lp.armed.IsZero() || lp.next.Before(lp.armed) {
		lp.armed = lp.next
		lp.file.SetReadDeadline(lp.armed)
	}
}

// timeouts fails exchanges past their deadline and closes clients that
// sent nothing for the idle timeout or a partial request for the header
// timeout, then arms the next wake-up.
func (lp *evLoop) timeouts(now time.Time) {
	opts := &lp.l.opts
	lp.next, lp.armed = time.Time{}, time.Time{}
	var next time.Time
	later := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for _, c := range lp.clients {
		switch {
		case c.busy && !c.writing:
			if !now.Before(c.x.Deadline) {
				lp.failExchange(c, ErrLoopTimeout, false)
				continue
			}
			later(c.x.Deadline)
		case c.writing:
			if now.Sub(c.since) > opts.WriteTimeout {
				lp.closeClient(c)
				continue
			}
			later(c.since.Add(opts.WriteTimeout))
		default:
			limit := opts.IdleTimeout
			if c.partial {
				limit = opts.HeaderTimeout
			}
			if now.Sub(c.since) >= limit {
				lp.closeClient(c)
				continue
			}
			later(c.since.Add(limit))
		}
	}
	if lp.exited {
		return
	}
	if next.IsZero() {
		lp.file.SetReadDeadline(time.Time{})
		return
	}
	lp.next, lp.armed = next, next
	lp.file.SetReadDeadline(next)
}

// dechunk decodes a chunked body at the start of b: the body, the bytes
// it used (trailers included), and whether it is complete.
func dechunk(b []byte) (body []byte, used int, complete bool, err error) {
	i := 0
	for {
		line, next := nextLine(b, i)
		if next < 0 {
			return nil, 0, false, nil
		}
		if semi := indexByte(line, ';'); semi >= 0 {
			line = line[:semi]
		}
		line = trimSpace(line)
		if len(line) == 0 || len(line) > 15 {
			return nil, 0, false, errMalformed
		}
		var size int64
		for _, d := range line {
			v, ok := hexVal(d)
			if !ok {
				return nil, 0, false, errMalformed
			}
			size = size<<4 | int64(v)
		}
		i = next
		if size == 0 {
			// Trailers up to the blank line.
			for {
				tl, tn := nextLine(b, i)
				if tn < 0 {
					return nil, 0, false, nil
				}
				i = tn
				if len(tl) == 0 {
					return body, i, true, nil
				}
			}
		}
		if int64(len(b)-i) < size+2 {
			return nil, 0, false, nil
		}
		if int64(len(body))+size > loopMaxResponse {
			return nil, 0, false, ErrBodyTooLarge
		}
		body = append(body, b[i:i+int(size)]...)
		i += int(size)
		if b[i] != '\r' || b[i+1] != '\n' {
			return nil, 0, false, errMalformed
		}
		i += 2
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// detach takes the socket of nc for a loop: a duplicate descriptor, with
// nc closed so the runtime poller lets go of it.
func detach(nc net.Conn) (int, bool) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, false
	}
	fd := -1
	if err := raw.Control(func(s uintptr) {
		if d, err := syscall.Dup(int(s)); err == nil {
			fd = d
		}
	}); err != nil || fd < 0 {
		return -1, false
	}
	syscall.CloseOnExec(fd)
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return -1, false
	}
	nc.Close()
	return fd, true
}

// attach makes a net.Conn of a loop's socket again.
func attach(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "")
	nc, err := net.FileConn(f)
	f.Close()
	return nc, err
}

const loopsAvailable = true

func closeFD(fd int) { syscall.Close(fd) }
