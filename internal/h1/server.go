package h1

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// FastOptions configures a Listener. NewListener fills in defaults for
// zero fields except Match and Handle, which are required.
type FastOptions struct {
	// Match reports whether the fast path serves req, judged on its
	// request line and headers (req.Body is not read yet). Requests the
	// listener never takes (see package doc) do not reach Match.
	Match func(req *FastRequest) bool
	// Handle serves a matched request on the connection's goroutine. The
	// response is written when Handle returns, or earlier by w.Send.
	// A panic closes the connection without a response (unless Send has
	// written it) and is logged, except http.ErrAbortHandler, which is how
	// a handler aborts on purpose, as with net/http.
	Handle func(ctx context.Context, req *FastRequest, w *FastResponseWriter)
	// MaxBodyBytes: a request with a larger Content-Length goes to net/http.
	// Default 6 MiB.
	MaxBodyBytes int64
	// MaxHeaderBytes: a request whose header block is longer goes to
	// net/http (which answers 431 over its own limit). Default 64 KiB.
	MaxHeaderBytes int
	// HeaderTimeout bounds reading a request's header block once its first
	// byte has arrived, and a new connection's first request; a client that
	// trickles headers is disconnected. Default 10 s.
	HeaderTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection. Default 5 min.
	IdleTimeout time.Duration
	// BodyTimeout bounds reading a request body that did not arrive with
	// its headers. Default 60 s.
	BodyTimeout time.Duration
	// WriteTimeout bounds writing a response. Default 60 s.
	WriteTimeout time.Duration
	// MaxConns caps the connections open at once: those served here and
	// those handed to net/http together, until each is closed. At the cap
	// the listener stops accepting, so further connections wait in the
	// kernel's accept queue (and, when it is full, their SYNs are dropped
	// and retried by the client's kernel) rather than being accepted and
	// closed at once: waiting costs berth no file descriptor and a client
	// nothing but latency, while an accept-and-close would spend a
	// descriptor and a system call per attempt under a flood and turn
	// every attempt into an error. Slots free up as the header, body and
	// idle timeouts close stalled connections, so while stalled clients
	// fill every slot a new client waits up to those timeouts; clients
	// already connected are served as usual. 0 means no cap.
	MaxConns int
	// NotSentLowat, when positive, sets TCP_NOTSENT_LOWAT on accepted
	// connections (Linux): a blocked write resumes once fewer than this
	// many bytes wait unsent, instead of once a third of the send buffer
	// has drained. That makes write progress visible in small steps, which
	// progress deadlines need: with send buffers autotuned to megabytes, a
	// slow but steady reader could otherwise leave a write blocked for
	// longer than the deadline. In-flight data is not limited, so
	// throughput is not either.
	NotSentLowat int
	// Logger receives handler panics and connection-limit warnings.
	// Default: discarded.
	Logger *slog.Logger
}

// Listener serves eligible requests itself and hands every other connection
// to the caller of Accept (a net/http.Server). See the package doc.
type Listener struct {
	inner   net.Listener
	opts    FastOptions
	ctx     context.Context // cancelled by Close; passed to Handle
	cancel  context.CancelFunc
	handoff chan net.Conn
	done    chan struct{}
	closing atomic.Bool
	once    sync.Once
	loop    sync.WaitGroup // the accept loop
	conns   sync.WaitGroup // fast-path connection goroutines
	mu      sync.Mutex
	active  map[*serverConn]struct{}
	date    atomic.Pointer[dateLine]
	slots   chan struct{} // one token per open connection; nil without MaxConns
	open    atomic.Int64  // connections open (served here or handed over)
}

var _ net.Listener = (*Listener)(nil)

// NewListener starts accepting connections from inner.
func NewListener(inner net.Listener, opts FastOptions) *Listener {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 6 << 20
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 64 << 10
	}
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = 10 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 5 * time.Minute
	}
	if opts.BodyTimeout <= 0 {
		opts.BodyTimeout = 60 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 60 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Listener{
		inner:   inner,
		opts:    opts,
		handoff: make(chan net.Conn),
		done:    make(chan struct{}),
		active:  make(map[*serverConn]struct{}),
	}
	if opts.MaxConns > 0 {
		l.slots = make(chan struct{}, opts.MaxConns)
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	l.loop.Add(1)
	go l.acceptLoop()
	return l
}

func (l *Listener) acceptLoop() {
	defer l.loop.Done()
	var backoff time.Duration
	for {
		if !l.acquire() {
			return
		}
		nc, err := l.inner.Accept()
		if err != nil {
			l.freeSlot()
			if l.closing.Load() || errors.Is(err, net.ErrClosed) {
				l.Close()
				return
			}
			// Like net/http: back off on errors such as EMFILE.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			select {
			case <-time.After(backoff):
			case <-l.done:
				return
			}
			continue
		}
		backoff = 0
		if l.opts.NotSentLowat > 0 {
			setNotSentLowat(nc, l.opts.NotSentLowat)
		}
		l.open.Add(1)
		sc := newServerConn(l, nc)
		l.mu.Lock()
		if l.closing.Load() {
			l.mu.Unlock()
			nc.Close()
			l.release()
			continue
		}
		l.active[sc] = struct{}{}
		l.conns.Add(1)
		l.mu.Unlock()
		go sc.serve()
	}
}

// acquire takes a connection slot for the next Accept, waiting while all
// are taken; false means the listener closed meanwhile.
func (l *Listener) acquire() bool {
	if l.slots != nil {
		select {
		case l.slots <- struct{}{}:
		default:
			l.opts.Logger.Warn("connection limit reached: new connections wait until one closes", "max_connections", cap(l.slots))
			select {
			case l.slots <- struct{}{}:
			case <-l.done:
				return false
			}
		}
	}
	return true
}

// release gives back the slot of a connection that is closed.
func (l *Listener) release() {
	l.open.Add(-1)
	l.freeSlot()
}

func (l *Listener) freeSlot() {
	if l.slots != nil {
		<-l.slots
	}
}

// OpenConns returns the number of client connections open: served on the
// fast path or handed over to net/http and not yet closed.
func (l *Listener) OpenConns() int { return int(l.open.Load()) }

// Accept returns the next connection handed over to net/http.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.handoff:
		return nc, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Addr returns the inner listener's address.
func (l *Listener) Addr() net.Addr { return l.inner.Addr() }

// Close stops accepting, closes idle fast-path connections and makes busy
// ones close after their current response. It does not wait; see Shutdown.
// Connections already handed over belong to net/http.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		l.closing.Store(true)
		close(l.done)
		err = l.inner.Close()
		l.cancel()
		// An idle connection's goroutine is waiting for a request, maybe
		// inside serveInline's read, which Close would wait for: expire
		// its read deadline instead, and it closes the connection itself.
		l.mu.Lock()
		for sc := range l.active {
			if sc.idle.Load() {
				_ = sc.nc.SetReadDeadline(aLongTimeAgo)
			}
		}
		l.mu.Unlock()
	})
	return err
}

// aLongTimeAgo is a deadline that has passed: setting it interrupts I/O.
var aLongTimeAgo = time.Unix(1, 0)

// Shutdown closes the listener and waits for fast-path connections to
// finish their current request; when ctx ends first it closes them all.
func (l *Listener) Shutdown(ctx context.Context) error {
	l.Close()
	done := make(chan struct{})
	go func() {
		l.loop.Wait()
		l.conns.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// Interrupt every connection's I/O, then close them outside the
		// lock: Close waits for a request being served inline to return.
		l.mu.Lock()
		busy := make([]net.Conn, 0, len(l.active))
		for sc := range l.active {
			_ = sc.nc.SetDeadline(aLongTimeAgo)
			busy = append(busy, sc.nc)
		}
		l.mu.Unlock()
		for _, nc := range busy {
			nc.Close()
		}
		<-done
		return ctx.Err()
	}
}

// dateLine is the Date header line for one second.
type dateLine struct {
	sec  int64
	line []byte
}

func (l *Listener) dateHeader(now time.Time) []byte {
	sec := now.Unix()
	if d := l.date.Load(); d != nil && d.sec == sec {
		return d.line
	}
	line := append([]byte("Date: "), now.UTC().AppendFormat(nil, http.TimeFormat)...)
	line = append(line, '\r', '\n')
	l.date.Store(&dateLine{sec: sec, line: line})
	return line
}

// serverConn is one accepted connection on the fast path.
type serverConn struct {
	l        *Listener
	nc       net.Conn
	sock     sockIO
	buf      []byte // unread input is buf[r:w]
	r, w     int
	rdl, wdl time.Time // deadlines currently set
	idle     atomic.Bool
	req      FastRequest
	resp     FastResponseWriter
	out      []byte
	bodyBuf  []byte
	sentAt   time.Time // when the last response was written (saves a clock read)

	// State of serveInline's callback.
	inlineFn func(fd uintptr) bool
	first    bool // no request served yet
	armed    bool // the header timeout runs for a request begun
	exit     inlineExit
}

// inlineExit says why serveInline returned.
type inlineExit int8

const (
	exitClose    inlineExit = iota // close the connection
	exitHandover                   // Match declined the request in the buffer
	exitSlow                       // the buffer holds a request serve finishes
)

func newServerConn(l *Listener, nc net.Conn) *serverConn {
	sc := &serverConn{l: l, nc: nc, buf: make([]byte, 4096), first: true}
	sc.sock.init(nc)
	sc.resp.sc = sc
	sc.inlineFn = sc.onReadable
	return sc
}

// setReadDeadline sets the read deadline to now+d, unless the one set is
// close enough (see renewDeadline).
func (sc *serverConn) setReadDeadline(now time.Time, d time.Duration) {
	if t, ok := renewDeadline(&sc.rdl, now, d); ok {
		_ = sc.nc.SetReadDeadline(t)
	}
}

func (sc *serverConn) setWriteDeadline(now time.Time, d time.Duration) {
	if t, ok := renewDeadline(&sc.wdl, now, d); ok {
		_ = sc.nc.SetWriteDeadline(t)
	}
}

// renewDeadline records and returns now+d as the deadline to set, or
// reports false when the one set (*cur) is at most d/16 earlier: a busy
// connection need not touch its timer on every request.
func renewDeadline(cur *time.Time, now time.Time, d time.Duration) (time.Time, bool) {
	t := now.Add(d)
	if !cur.IsZero() && !t.Before(*cur) && t.Sub(*cur) < d/16 {
		return time.Time{}, false
	}
	*cur = t
	return t, true
}

func (sc *serverConn) untrack() {
	sc.l.mu.Lock()
	delete(sc.l.active, sc)
	sc.l.mu.Unlock()
	sc.l.conns.Done()
}

func (sc *serverConn) serve() {
	handed := false
	defer func() {
		if p := recover(); p != nil && p != http.ErrAbortHandler {
			sc.l.opts.Logger.Error("panic serving fast-path request", "remote", sc.nc.RemoteAddr().String(), "panic", p)
		}
		if !handed {
			sc.nc.Close()
			sc.l.release()
		}
		sc.untrack()
	}()
	for {
		if sc.r == sc.w {
			sc.r, sc.w = 0, 0
			if !sc.waitIdle() {
				return
			}
			if sc.sock.raw != nil {
				switch sc.serveInline() {
				case exitClose:
					return
				case exitHandover:
					handed = sc.handover()
					return
				}
			} else {
				n, _ := sc.sock.Read(sc.buf)
				sc.idle.Store(false)
				if n == 0 {
					return
				}
				sc.w = n
			}
		}
		sc.first = false
		end, ok := sc.readHead()
		if end < 0 {
			return // timed out or closed while reading headers
		}
		if !ok {
			handed = sc.handover()
			return
		}
		if !sc.readBody(end) {
			return
		}
		sc.armed = false
		if !sc.serveOne() {
			return
		}
		if sc.l.closing.Load() {
			return
		}
	}
}

// waitIdle sets the deadline for the next request (the header timeout for
// a connection's first) and marks the connection idle; false means the
// listener is closing.
func (sc *serverConn) waitIdle() bool {
	wait := sc.l.opts.IdleTimeout
	if sc.first {
		wait = sc.l.opts.HeaderTimeout
	}
	now := sc.sentAt
	if now.IsZero() {
		now = time.Now()
	}
	sc.sentAt = time.Time{}
	sc.setReadDeadline(now, wait)
	// Listener.Close interrupts idle connections through their deadline,
	// so the flag goes up after the deadline is set and closing is read
	// after the flag.
	sc.idle.Store(true)
	return !sc.l.closing.Load()
}

// serveInline serves requests inside one RawConn.Read call that lasts as
// long as requests keep arriving whole (head and body in what one wait
// delivers) and Match takes them. The point is the read it saves: after a
// response is written, the next read would find nothing and return EAGAIN
// before the goroutine parks, a system call per request. A separate
// RawConn.Read per request cannot skip it, because each call starts by
// forgetting readiness reported earlier (data that arrived in between would
// never wake the wait). Inside one call nothing is forgotten, so once a read
// has drained the socket the callback returns false and the runtime parks
// the goroutine until more bytes arrive.
//
// The connection's read lock is held all along, so nothing else may read
// it; Listener.Close and Shutdown interrupt it through the deadline.
func (sc *serverConn) serveInline() inlineExit {
	sc.exit = exitClose
	if err := sc.sock.raw.Read(sc.inlineFn); err != nil {
		return exitClose // deadline, close or reset
	}
	return sc.exit
}

// onReadable is serveInline's callback: it reads what has arrived, serves
// every whole request in the buffer, and returns false to wait for more or
// true (with sc.exit set) to leave.
func (sc *serverConn) onReadable(fd uintptr) bool {
	opts := &sc.l.opts
	for {
		if sc.r == sc.w {
			sc.r, sc.w = 0, 0
		}
		if sc.w == len(sc.buf) {
			if sc.r == 0 {
				sc.exit = exitSlow // a long head: readHead grows the buffer
				return true
			}
			sc.w = copy(sc.buf, sc.buf[sc.r:sc.w])
			sc.r = 0
		}
		n, errno := rawRead(fd, sc.buf[sc.w:])
		switch errno {
		case 0:
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		default:
			sc.exit = exitClose
			return true
		}
		if n == 0 {
			sc.exit = exitClose
			return true
		}
		raceAcquireIO(fd)
		sc.idle.Store(false)
		drained := sc.w+n < len(sc.buf) // a short read took all there was
		sc.w += n
		for sc.r < sc.w {
			end, _, err := findHeaderEnd(sc.buf[sc.r:sc.w], 0)
			if err != nil {
				sc.exit = exitSlow // readHead refuses it the usual way
				return true
			}
			if end < 0 {
				if sc.w-sc.r >= opts.MaxHeaderBytes {
					sc.exit = exitSlow
					return true
				}
				break // wait for the rest of the head
			}
			req := &sc.req
			if !parseRequestHead(sc.buf[sc.r:sc.r+end], req) || req.ContentLength > opts.MaxBodyBytes {
				sc.exit = exitSlow
				return true
			}
			start := sc.r + end
			bodyLen := int(max(req.ContentLength, 0))
			if sc.w-start < bodyLen {
				sc.exit = exitSlow // readBody waits for the rest, with its own timeout
				return true
			}
			req.RemoteAddr = sc.nc.RemoteAddr()
			if !opts.Match(req) {
				sc.exit = exitHandover
				return true
			}
			req.Body = sc.buf[start : start+bodyLen]
			sc.r = start + bodyLen
			sc.first, sc.armed = false, false
			if !sc.serveOne() || sc.l.closing.Load() {
				sc.exit = exitClose
				return true
			}
		}
		if !drained {
			continue
		}
		if sc.r == sc.w {
			if !sc.waitIdle() {
				sc.exit = exitClose
				return true
			}
		} else if !sc.armed {
			sc.setReadDeadline(time.Now(), opts.HeaderTimeout)
			sc.armed = true
		}
		return false
	}
}

// readHead reads until buf[r:] holds a complete header block and parses it
// into sc.req. end is the block's length (-1 when the connection failed);
// ok reports whether the fast path takes the request.
func (sc *serverConn) readHead() (end int, ok bool) {
	opts := &sc.l.opts
	scan := 0
	for {
		e, resume, err := findHeaderEnd(sc.buf[sc.r:sc.w], scan)
		if err != nil {
			return 0, false
		}
		if e >= 0 {
			end = e
			break
		}
		if sc.w-sc.r >= opts.MaxHeaderBytes {
			return 0, false
		}
		scan = resume
		if !sc.armed {
			sc.setReadDeadline(time.Now(), opts.HeaderTimeout)
			sc.armed = true
		}
		if sc.w == len(sc.buf) {
			if sc.r > 0 {
				sc.w = copy(sc.buf, sc.buf[sc.r:sc.w])
				sc.r = 0
			} else {
				nb := make([]byte, min(2*len(sc.buf), opts.MaxHeaderBytes))
				copy(nb, sc.buf[:sc.w])
				sc.buf = nb
			}
		}
		n, err := sc.sock.Read(sc.buf[sc.w:])
		sc.w += n
		if n == 0 && err != nil {
			return -1, false
		}
	}
	req := &sc.req
	if !parseRequestHead(sc.buf[sc.r:sc.r+end], req) || req.ContentLength > opts.MaxBodyBytes {
		return end, false
	}
	req.RemoteAddr = sc.nc.RemoteAddr()
	if !opts.Match(req) {
		return end, false
	}
	return end, true
}

// readBody makes sc.req.Body the request body: a slice of the input buffer
// when it arrived with the headers, else a per-connection buffer.
func (sc *serverConn) readBody(end int) bool {
	req := &sc.req
	start := sc.r + end
	n := int(max(req.ContentLength, 0))
	if sc.w-start >= n {
		req.Body = sc.buf[start : start+n]
		sc.r = start + n
		return true
	}
	if cap(sc.bodyBuf) < n {
		sc.bodyBuf = make([]byte, n)
	}
	body := sc.bodyBuf[:n]
	got := copy(body, sc.buf[start:sc.w])
	sc.r, sc.w = 0, 0
	sc.setReadDeadline(time.Now(), sc.l.opts.BodyTimeout)
	if _, err := io.ReadFull(&sc.sock, body[got:]); err != nil {
		return false
	}
	req.Body = body
	if cap(sc.bodyBuf) > 1<<20 {
		sc.bodyBuf = nil // do not keep a large body buffer on an idle connection
	}
	return true
}

// serveOne runs Handle and writes the response; false means close.
func (sc *serverConn) serveOne() bool {
	w := &sc.resp
	w.reset()
	sc.l.opts.Handle(sc.l.ctx, &sc.req, w)
	if !w.sent {
		if err := w.Send(); err != nil {
			return false
		}
	}
	if w.err != nil || w.close || sc.req.close {
		return false
	}
	return true
}

// handover passes the connection to Accept with the unread input replayed.
func (sc *serverConn) handover() bool {
	pending := append([]byte(nil), sc.buf[sc.r:sc.w]...)
	_ = sc.nc.SetDeadline(time.Time{})
	hc := &handedConn{Conn: sc.nc, pending: pending, l: sc.l}
	select {
	case sc.l.handoff <- hc:
		return true
	case <-sc.l.done:
		return false
	}
}

// handedConn replays bytes the fast path already read before reading from
// the connection again, and gives back its connection slot when closed.
type handedConn struct {
	net.Conn
	pending []byte
	l       *Listener
	closed  atomic.Bool
}

func (c *handedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.release()
	}
	return err
}

func (c *handedConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes a TCP connection, as net/http does after an error
// response.
func (c *handedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// FastResponseWriter builds the response to a fast-path request: status,
// header lines, body; it is written in one write with Content-Length (and
// Date) when Handle returns or at Send.
type FastResponseWriter struct {
	sc     *serverConn
	status int
	hdr    []byte
	body   []byte
	close  bool
	sent   bool
	err    error
}

func (w *FastResponseWriter) reset() {
	w.status, w.hdr, w.body, w.close, w.sent, w.err = 200, w.hdr[:0], w.body[:0], false, false, nil
}

// WriteHeader sets the status code (default 200).
func (w *FastResponseWriter) WriteHeader(status int) { w.status = status }

// AddHeader adds a header line. CR and LF in value are replaced by spaces.
// Content-Length, Date and Connection are written by the writer itself.
func (w *FastResponseWriter) AddHeader(name, value string) { w.hdr = AppendHeader(w.hdr, name, value) }

// AddHeaderBytes is AddHeader for a value in a byte slice.
func (w *FastResponseWriter) AddHeaderBytes(name string, value []byte) {
	w.hdr = AppendHeader(w.hdr, name, value)
}

// Write appends p to the body.
func (w *FastResponseWriter) Write(p []byte) (int, error) {
	w.body = append(w.body, p...)
	return len(p), nil
}

// Buffer returns the writer's (reused) body buffer, emptied, to read a body
// into; hand the result to SetBody.
func (w *FastResponseWriter) Buffer() []byte { return w.body[:0] }

// SetBody makes b the body. b must stay unchanged until the response is
// sent (at Send or when Handle returns).
func (w *FastResponseWriter) SetBody(b []byte) { w.body = b }

// SetClose closes the connection after this response.
func (w *FastResponseWriter) SetClose() { w.close = true }

// Send writes the response now; later changes have no effect. Handle need
// not call it unless the body must be released before Handle returns.
func (w *FastResponseWriter) Send() error {
	if w.sent {
		return w.err
	}
	w.sent = true
	sc := w.sc
	now := time.Now()
	sc.sentAt = now
	b := sc.out[:0]
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(w.status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(w.status)...)
	b = append(b, '\r', '\n')
	b = append(b, sc.l.dateHeader(now)...)
	b = append(b, w.hdr...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(w.body)), 10)
	b = append(b, '\r', '\n')
	if w.close || sc.req.close || sc.l.closing.Load() {
		w.close = true
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, '\r', '\n')
	sc.setWriteDeadline(now, sc.l.opts.WriteTimeout)
	var err error
	if len(w.body) <= smallBody {
		b = append(b, w.body...)
		_, err = sc.sock.Write(b)
	} else {
		bufs := net.Buffers{b, w.body}
		_, err = bufs.WriteTo(sc.nc)
	}
	if cap(b) <= 256<<10 {
		sc.out = b[:0]
	}
	if cap(w.body) > 1<<20 {
		w.body = nil
	}
	if err != nil {
		w.err = fmt.Errorf("write response: %w", err)
	}
	return w.err
}
