package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ClientOptions configures a Client. The zero value is usable; NewClient
// fills in the defaults.
type ClientOptions struct {
	// MaxIdlePerHost bounds the idle keep-alive connections kept per
	// address; a connection released when the pool is full replaces the
	// oldest idle one. Default 256 (size it to the expected concurrency).
	MaxIdlePerHost int
	// IdleTimeout is how long an idle connection may stay in the pool
	// before it is closed instead of reused. Default 60 s. Keep it below
	// the upstream server's own keep-alive timeout.
	IdleTimeout time.Duration
	// DialTimeout bounds connecting to an upstream. Default 5 s.
	DialTimeout time.Duration
	// MaxHeaderBytes bounds a response's status line and header block.
	// Default 64 KiB.
	MaxHeaderBytes int
	// Dial, if set, opens new connections instead of a net.Dialer (tests).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// Now returns the current time, for the age of idle connections;
	// time.Now by default. Tests advance it instead of waiting.
	Now func() time.Time
}

// Client sends HTTP/1.1 requests over pooled keep-alive connections, each
// call entirely on the caller's goroutine. It is safe for concurrent use.
type Client struct {
	opts    ClientOptions
	dialer  net.Dialer
	pools   sync.Map // addr → *hostPool
	closed  atomic.Bool
	aborted atomic.Bool
}

// Errors the client returns, wrapped with context.
var (
	// ErrBodyTooLarge: the response body is longer than the caller's cap.
	ErrBodyTooLarge = errors.New("response body over the size limit")
	// ErrHeaderTooLarge: the response header block is longer than
	// MaxHeaderBytes.
	ErrHeaderTooLarge = errors.New("response header block over the size limit")
	// ErrClientClosed: Do after Close.
	ErrClientClosed = errors.New("client closed")
)

// DialError reports that no connection could be opened, so no byte of the
// request was sent: the request may be retried on another upstream.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return "dial " + e.Addr + ": " + e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// IsDialError reports whether err means nothing was sent (see DialError).
func IsDialError(err error) bool {
	var de *DialError
	return errors.As(err, &de)
}

// NewClient returns a Client with opts' zero fields set to the defaults.
func NewClient(opts ClientOptions) *Client {
	if opts.MaxIdlePerHost <= 0 {
		opts.MaxIdlePerHost = 256
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 60 * time.Second
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 64 << 10
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Client{opts: opts}
	c.dialer.Timeout = opts.DialTimeout
	return c
}

// Request is one upstream request. Method, Path and Host must not contain
// spaces or control characters (Do checks).
type Request struct {
	// Method defaults to POST.
	Method string
	// Path is the request-target, e.g. "/invocations".
	Path string
	// Host is the Host header; defaults to the address dialled.
	Host string
	// Header holds extra header lines, each "Name: value\r\n", written as
	// is (build it with AppendHeader). It must not contain Host,
	// Content-Length, Transfer-Encoding or Connection.
	Header []byte
	// Body is the request body. Ignored when BodyReader is set.
	Body []byte
	// BodyReader, if set, supplies exactly BodyLength bytes of body. A
	// request with a BodyReader that has been read from is not retried.
	BodyReader io.Reader
	// BodyLength is the length of BodyReader's content.
	BodyLength int64
	// Deadline, if set, bounds the exchange including the body like a
	// context deadline, without a context: the earlier of the two applies.
	// A read or write it interrupts fails with an error wrapping
	// os.ErrDeadlineExceeded.
	Deadline time.Time
}

// smallBody is the largest body copied into the same write as the headers.
const smallBody = 64 << 10

// Do sends req to addr ("host:port") and reads the response status line
// and headers. The caller must read the body (Read or ReadBody) and call
// Close on the response, which returns its connection to the pool when the
// body was read completely. ctx bounds the whole exchange including the
// body: its deadline (or req.Deadline, when earlier) becomes the
// connection's deadline, and cancelling it interrupts a blocked read or
// write. A context that cannot be cancelled costs nothing per call; one
// that can costs a context.AfterFunc registration.
//
// A reused idle connection that fails before any response byte arrives is
// retried once on a new connection. A failure to connect is a *DialError.
func (c *Client) Do(ctx context.Context, addr string, req *Request) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.Path, err)
	}
	if c.closed.Load() {
		return nil, ErrClientClosed
	}
	if !validStartToken(req.Method) || !validStartToken(req.Path) || !validStartToken(req.Host) {
		return nil, errors.New("request method, path or host has spaces or control characters")
	}
	hp := c.pool(addr)
	resp := respPool.Get().(*Response)
	for attempt := 0; ; attempt++ {
		var pc *pconn
		if attempt == 0 {
			pc = hp.get(c.opts.IdleTimeout)
		}
		reused := pc != nil
		if pc == nil {
			var err error
			if pc, err = c.dial(ctx, addr, hp); err != nil {
				respPool.Put(resp)
				if cerr := ctx.Err(); cerr != nil {
					err = cerr
				}
				return nil, &DialError{Addr: addr, Err: err}
			}
		}
		stop := pc.arm(ctx, req.Deadline)
		if c.aborted.Load() {
			pc.interrupt() // Abort may have run before arm set the deadline
		}
		touched, gotByte, err := c.exchange(pc, req, resp)
		if err == nil {
			resp.c, resp.pc, resp.stop, resp.ctx = c, pc, stop, ctx
			if resp.mode == bodyNone || resp.mode == bodyLength && resp.remaining == 0 {
				resp.finish()
			}
			return resp, nil
		}
		if stop != nil {
			stop()
		}
		pc.close()
		err = ctxErr(ctx, err)
		if reused && !gotByte && !touched && attempt == 0 && ctx.Err() == nil {
			continue
		}
		respPool.Put(resp)
		return nil, fmt.Errorf("%s %s on %s: %w", methodOr(req.Method), req.Path, addr, err)
	}
}

func methodOr(m string) string {
	if m == "" {
		return "POST"
	}
	return m
}

// validStartToken reports whether s has no byte a request line cannot carry
// inside a token: SP, controls, DEL.
func validStartToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// ctxErr replaces a timeout caused by ctx (deadline passed or cancelled)
// with ctx's error, keeping err as context.
func ctxErr(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%w (%v)", cerr, err)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		}
	}
	return err
}

// exchange writes req on pc and reads the response head into resp.
// touched reports whether req.BodyReader was read from; gotByte whether
// any response byte arrived.
func (c *Client) exchange(pc *pconn, req *Request, resp *Response) (touched, gotByte bool, err error) {
	out, touched, err := pc.writeRequest(req)
	if err != nil {
		return touched, false, fmt.Errorf("write request: %w", err)
	}
	if out != nil {
		// The whole request is in out: write it and read the first bytes
		// of the answer in one step (see sockIO.WriteRead).
		if pc.r == pc.w {
			pc.r, pc.w = 0, 0
		}
		if pc.w == len(pc.buf) {
			if _, err := pc.sock.Write(out); err != nil {
				return false, false, fmt.Errorf("write request: %w", err)
			}
		} else {
			n, werr, rerr := pc.sock.WriteRead(out, pc.buf[pc.w:])
			if werr != nil {
				return false, false, fmt.Errorf("write request: %w", werr)
			}
			if n == 0 {
				return false, false, fmt.Errorf("read response: %w", rerr)
			}
			pc.w += n
		}
	}
	gotByte, err = pc.readHead(resp, c.opts.MaxHeaderBytes, req.Method == "HEAD")
	if err != nil {
		return touched, gotByte, fmt.Errorf("read response: %w", err)
	}
	return touched, gotByte, nil
}

func (c *Client) pool(addr string) *hostPool {
	if v, ok := c.pools.Load(addr); ok {
		return v.(*hostPool)
	}
	v, _ := c.pools.LoadOrStore(addr, &hostPool{max: c.opts.MaxIdlePerHost, now: c.opts.Now})
	return v.(*hostPool)
}

func (c *Client) dial(ctx context.Context, addr string, hp *hostPool) (*pconn, error) {
	var nc net.Conn
	var err error
	if c.opts.Dial != nil {
		nc, err = c.opts.Dial(ctx, "tcp", addr)
	} else {
		nc, err = c.dialer.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	pc := newPconn(nc, hp)
	hp.mu.Lock()
	if hp.live == nil {
		hp.live = make(map[*pconn]struct{})
	}
	hp.live[pc] = struct{}{}
	hp.mu.Unlock()
	return pc, nil
}

// CloseIdleConnections closes every idle pooled connection.
func (c *Client) CloseIdleConnections() {
	c.pools.Range(func(_, v any) bool {
		v.(*hostPool).closeAll()
		return true
	})
}

// CloseHost closes the idle connections to addr and forgets its pool, for
// an upstream that stopped: connections busy with a request close when
// they are released instead of returning to a pool. A later Do to addr
// starts a new pool.
func (c *Client) CloseHost(addr string) {
	v, ok := c.pools.LoadAndDelete(addr)
	if !ok {
		return
	}
	hp := v.(*hostPool)
	hp.mu.Lock()
	hp.closed = true
	hp.mu.Unlock()
	hp.closeAll()
}

// Abort interrupts every exchange in progress, whose reads and writes then
// fail at once, and closes the client as Close does.
func (c *Client) Abort() {
	c.aborted.Store(true)
	c.Close()
	c.pools.Range(func(_, v any) bool {
		hp := v.(*hostPool)
		hp.mu.Lock()
		for pc := range hp.live {
			pc.interrupt()
		}
		hp.mu.Unlock()
		return true
	})
}

// Close closes idle connections and makes connections released later
// close instead of pooling; Do fails afterwards.
func (c *Client) Close() {
	c.closed.Store(true)
	c.pools.Range(func(_, v any) bool {
		hp := v.(*hostPool)
		hp.mu.Lock()
		hp.closed = true
		hp.mu.Unlock()
		hp.closeAll()
		return true
	})
}

// IdleConns returns the number of idle pooled connections to addr.
func (c *Client) IdleConns(addr string) int {
	v, ok := c.pools.Load(addr)
	if !ok {
		return 0
	}
	hp := v.(*hostPool)
	hp.mu.Lock()
	defer hp.mu.Unlock()
	return len(hp.idle)
}

// hostPool is the LIFO stack of idle connections to one address: the most
// recently used connection is reused first, so surplus connections age at
// the bottom and expire.
type hostPool struct {
	mu     sync.Mutex
	idle   []*pconn            // oldest first
	live   map[*pconn]struct{} // every open connection, idle or busy, for Abort
	max    int
	now    func() time.Time
	closed bool
}

// peekAfter is how long a connection must have been idle before get checks
// with a non-blocking peek that the server has not closed it; fresher
// connections rely on the retry in Do.
const peekAfter = 100 * time.Millisecond

func (hp *hostPool) get(idleTimeout time.Duration) *pconn {
	for {
		hp.mu.Lock()
		n := len(hp.idle)
		if n == 0 {
			hp.mu.Unlock()
			return nil
		}
		pc := hp.idle[n-1]
		hp.idle[n-1] = nil
		hp.idle = hp.idle[:n-1]
		idle := hp.now().Sub(pc.idleAt)
		if idle > idleTimeout {
			// Everything below is older still.
			stale := append([]*pconn(nil), hp.idle...)
			clear(hp.idle)
			hp.idle = hp.idle[:0]
			hp.mu.Unlock()
			pc.close()
			for _, s := range stale {
				s.close()
			}
			return nil
		}
		hp.mu.Unlock()
		if idle > peekAfter && !pc.alive() {
			pc.close()
			continue
		}
		return pc
	}
}

func (hp *hostPool) put(pc *pconn) {
	pc.idleAt = hp.now()
	var evict *pconn
	hp.mu.Lock()
	if hp.closed {
		hp.mu.Unlock()
		pc.close()
		return
	}
	if len(hp.idle) >= hp.max {
		evict = hp.idle[0]
		copy(hp.idle, hp.idle[1:])
		hp.idle = hp.idle[:len(hp.idle)-1]
	}
	hp.idle = append(hp.idle, pc)
	hp.mu.Unlock()
	if evict != nil {
		evict.close()
	}
}

func (hp *hostPool) closeAll() {
	hp.mu.Lock()
	idle := hp.idle
	hp.idle = nil
	hp.mu.Unlock()
	for _, pc := range idle {
		pc.close()
	}
}

// pconn is one upstream connection with its read and write buffers.
type pconn struct {
	nc        net.Conn
	sock      sockIO
	raw       syscall.RawConn // nil when nc is not a socket
	pool      *hostPool
	buf       []byte // read buffer; unread data is buf[r:w]
	r, w      int
	wbuf      []byte
	idleAt    time.Time
	deadline  time.Time     // deadline currently set on nc
	slack     time.Duration // how much later than asked deadline was set
	interrupt func()        // sets an immediate deadline; for context.AfterFunc
	peekFn    func(fd uintptr) bool
	peekState int8 // result of the last peek: 1 alive, 0 closed or unknown
}

func newPconn(nc net.Conn, hp *hostPool) *pconn {
	pc := &pconn{nc: nc, pool: hp, buf: make([]byte, 4096), wbuf: make([]byte, 0, 1024)}
	pc.sock.init(nc)
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			pc.raw = raw
		}
	}
	pc.interrupt = func() { _ = pc.nc.SetDeadline(aLongTimeAgo) }
	pc.peekFn = pc.peek
	return pc
}

// setDeadline sets the connection's deadline to dl plus a padding of 1/64
// of the time left, or keeps the one set while dl is no earlier than it
// minus its padding: every request on a busy connection asks for a
// slightly later deadline, and re-arming the runtime's timer each time
// costs more than a timeout that fires up to 1.6 % late. Keeping compares
// with the remembered padding, so it reads no clock.
func (pc *pconn) setDeadline(dl time.Time) {
	if dl.IsZero() || pc.deadline.IsZero() {
		if !dl.Equal(pc.deadline) {
			_ = pc.nc.SetDeadline(dl)
			pc.deadline, pc.slack = dl, 0
		}
		return
	}
	if !pc.deadline.Before(dl) && pc.deadline.Sub(dl) <= pc.slack {
		return
	}
	pc.slack = max(time.Until(dl)/64, 0)
	pc.deadline = dl.Add(pc.slack)
	_ = pc.nc.SetDeadline(pc.deadline)
}

func (pc *pconn) close() {
	hp := pc.pool
	hp.mu.Lock()
	delete(hp.live, pc)
	hp.mu.Unlock()
	_ = pc.nc.Close()
}

// arm applies the earlier of ctx's deadline and deadline to the
// connection, and, if ctx can be cancelled, arranges for cancellation to
// interrupt blocked I/O. The returned stop function (nil if none) must be
// called when the exchange is over; if it returns false the connection
// must not be reused.
func (pc *pconn) arm(ctx context.Context, deadline time.Time) func() bool {
	dl, ok := ctx.Deadline()
	if !deadline.IsZero() && (!ok || deadline.Before(dl)) {
		dl = deadline
	}
	pc.setDeadline(dl)
	if ctx.Done() == nil {
		return nil
	}
	return context.AfterFunc(ctx, pc.interrupt)
}

// alive checks without blocking that the peer has not closed the idle
// connection (and sent nothing unexpected).
func (pc *pconn) alive() bool {
	if pc.raw == nil {
		return true
	}
	pc.peekState = 0
	err := pc.raw.Read(pc.peekFn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The last exchange's deadline passed while the connection sat
		// idle; it says nothing about the connection. Clear it and look.
		pc.setDeadline(time.Time{})
		err = pc.raw.Read(pc.peekFn)
	}
	return err == nil && pc.peekState == 1
}

func (pc *pconn) peek(fd uintptr) bool {
	var b [1]byte
	n, err := recvPeek(fd, b[:])
	if n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK) {
		pc.peekState = 1 // nothing to read: open and quiet
	}
	return true
}

// writeRequest formats and writes req. A request that fits one write is
// returned in out instead, for the caller to write; otherwise out is nil.
// touched reports whether req.BodyReader was read from.
func (pc *pconn) writeRequest(req *Request) (out []byte, touched bool, err error) {
	b := pc.wbuf[:0]
	b = append(b, methodOr(req.Method)...)
	b = append(b, ' ')
	b = append(b, req.Path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	if req.Host != "" {
		b = append(b, req.Host...)
	} else {
		b = append(b, pc.nc.RemoteAddr().String()...)
	}
	b = append(b, '\r', '\n')
	b = append(b, req.Header...)
	n := int64(len(req.Body))
	if req.BodyReader != nil {
		n = req.BodyLength
	}
	if n > 0 || !(req.Method == "GET" || req.Method == "HEAD") {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, n, 10)
		b = append(b, '\r', '\n')
	}
	b = append(b, '\r', '\n')
	if req.BodyReader == nil && n <= smallBody {
		b = append(b, req.Body...)
		pc.keepWbuf(b)
		return b, false, nil
	}
	pc.keepWbuf(b)
	if _, err = pc.sock.Write(b); err != nil {
		return nil, false, err
	}
	if req.BodyReader == nil {
		_, err = pc.sock.Write(req.Body)
		return nil, false, err
	}
	buf := pc.wbuf[:cap(pc.wbuf)]
	if len(buf) < 32<<10 {
		buf = make([]byte, 32<<10)
		pc.wbuf = buf[:0]
	}
	for left := n; left > 0; {
		chunk := buf
		if int64(len(chunk)) > left {
			chunk = chunk[:left]
		}
		touched = true
		m, rerr := io.ReadFull(req.BodyReader, chunk)
		if m > 0 {
			if _, err = pc.sock.Write(chunk[:m]); err != nil {
				return nil, true, err
			}
			left -= int64(m)
		}
		if rerr != nil && left > 0 {
			if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
				rerr = fmt.Errorf("request body shorter than its length %d", n)
			}
			return nil, true, fmt.Errorf("read request body: %w", rerr)
		}
	}
	return nil, true, nil
}

// keepWbuf keeps b's array for the next request unless it grew large.
func (pc *pconn) keepWbuf(b []byte) {
	if cap(b) <= 256<<10 {
		pc.wbuf = b[:0]
	}
}

// errBufferFull: a line or header block does not fit the buffer limit.
var errBufferFull = errors.New("buffer full")

// fill reads more data into buf[w:], compacting or growing buf (up to
// limit bytes) when it is full.
func (pc *pconn) fill(limit int) (int, error) {
	if pc.r == pc.w {
		pc.r, pc.w = 0, 0
	}
	if pc.w == len(pc.buf) {
		if pc.r > 0 {
			pc.w = copy(pc.buf, pc.buf[pc.r:pc.w])
			pc.r = 0
		} else {
			if len(pc.buf) >= limit {
				return 0, errBufferFull
			}
			nb := make([]byte, min(2*len(pc.buf), limit))
			copy(nb, pc.buf[:pc.w])
			pc.buf = nb
		}
	}
	n, err := pc.sock.Read(pc.buf[pc.w:])
	pc.w += n
	if n > 0 {
		return n, nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return 0, err
}

// readHead reads and parses a response head, skipping 1xx informational
// responses.
func (pc *pconn) readHead(resp *Response, maxHeader int, head bool) (gotByte bool, err error) {
	gotByte = pc.w > pc.r // read with the request (exchange)
	scan := 0
	for {
		end, resume, err := findHeaderEnd(pc.buf[pc.r:pc.w], scan)
		if err != nil {
			return true, err
		}
		if end < 0 {
			if pc.w-pc.r >= maxHeader {
				return true, fmt.Errorf("%w (%d bytes)", ErrHeaderTooLarge, maxHeader)
			}
			scan = resume
			n, err := pc.fill(maxHeader)
			if n > 0 {
				gotByte = true
				continue
			}
			if errors.Is(err, errBufferFull) {
				return true, fmt.Errorf("%w (%d bytes)", ErrHeaderTooLarge, maxHeader)
			}
			if err == io.EOF && gotByte {
				err = io.ErrUnexpectedEOF
			}
			return gotByte, err
		}
		resp.raw = append(resp.raw[:0], pc.buf[pc.r:pc.r+end]...)
		pc.r += end
		var h respHead
		if err := parseResponseHead(resp.raw, &h); err != nil {
			return true, err
		}
		if h.status < 200 {
			if h.status == 101 {
				return true, errors.New("unexpected 101 switching protocols")
			}
			scan = 0
			continue
		}
		resp.setHead(&h, head)
		return true, nil
	}
}
