// Package h1 is a minimal HTTP/1.1 implementation for berth's invocation hot
// path: an upstream client (berth → model container) and a front-listener
// fast path (client → berth) that hands everything else to net/http.
//
// Why it exists: on a real-time invocation the proxying itself is cheap — a
// few hundred bytes in, a few hundred bytes out — but the standard library
// spends far more than that around it. net/http's server runs a goroutine per
// connection plus a background-read goroutine, http.Transport sends through a
// writeLoop goroutine and receives through a readLoop goroutine, and every
// hop between them is a channel hand-off that wakes a parked thread through a
// futex. Each request also builds two http.Header maps (inbound request,
// upstream response) with canonicalised keys and reads both bodies with
// io.ReadAll. Measured in BENCHMARKS.md, that made berth cost 3.5× nginx's
// CPU per request. Here, one goroutine per front connection reads the
// request, calls the handler, and the handler's upstream call writes and
// reads its pooled connection on that same goroutine: no hand-offs, no
// header maps, pooled buffers, and usually no allocation at all.
//
// Client: a per-address LIFO pool of idle keep-alive connections, a call
// that runs entirely on the caller's goroutine (no goroutine per connection
// or per call), deadlines from the context or the request through
// SetDeadline (no timer or context registration of its own per call), Abort
// to interrupt every exchange in progress at shutdown, a small
// strict response parser, bodies with Content-Length, chunked, or read until
// close, read into a caller buffer with a size cap or streamed as an
// io.Reader. A reused idle connection that fails before any response byte
// arrives is retried once on a fresh connection; a failure to dial is
// reported as a *DialError so a router can retry on another instance.
//
// Listener: wraps a net.Listener, accepts connections itself and serves the
// requests its caller's Match function accepts (an eligible POST with a
// Content-Length) on the connection's goroutine. The first request it does
// not take — anything Match declines, HTTP/1.0, Transfer-Encoding, Expect,
// Upgrade, oversized or malformed headers — hands the connection over to a
// standard net/http.Server through Accept, with every byte read so far
// replayed first; from then on the connection belongs to net/http. So
// httpServer.Serve(listener) keeps serving all other traffic unchanged, and
// net/http stays the one place that answers malformed requests (400, 431).
// The listener also bounds what clients can hold: header, body, idle and
// write timeouts on the fast path, and MaxConns, a cap on the connections
// open at once (served here or handed over), beyond which it stops
// accepting and lets further connections wait in the kernel's queue.
//
// What it deliberately does not do: TLS, HTTP/2, proxies, redirects,
// cookies, compression, request bodies of unknown length (chunked requests
// on the fast path or from the client), 100-continue, trailers (read and
// discarded), header canonicalisation, or any header it does not need. The
// parsers are stricter than net/http: a bare LF, obsolete line folding, a
// header with both Content-Length and Transfer-Encoding, duplicate
// Content-Length values, or any byte out of place is refused (the client
// returns an error; the listener hands the request to net/http).
//
// Both sides read and write their sockets with raw system calls inside
// the connections' RawConn callbacks (sock.go): the runtime poller still
// waits, but a call is not bracketed by the runtime's system-call
// bookkeeping, which on loopback let sysmon hand the goroutine's P to
// another thread during a long write. And neither makes the read that
// would find nothing: the listener serves a connection's requests inside
// one long RawConn.Read (serveInline), the client writes its request
// inside the read that waits for the answer (sockIO.WriteRead), so the
// goroutine parks without first trying a read that returns EAGAIN — two
// system calls per proxied request fewer, as many reads as nginx makes.
//
// Where berth uses it: internal/router sends every invocation whose body
// length is known through a Client, and internal/app puts a Listener in
// front of its net/http server, with internal/awsapi/runtime's FastMatch
// and FastInvoke serving plain InvokeEndpoint requests.
package h1
