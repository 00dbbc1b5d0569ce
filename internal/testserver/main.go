// Command testserver is a small but real model server that speaks the
// SageMaker container contract. Tests across berth run it as a local
// process (build it with testserverbin.Build) to exercise runtimes, routing,
// batch and async paths against a real HTTP server.
//
// Endpoints:
//
//	GET  /ping         200 once ready (503 before TESTSERVER_PING_DELAY has
//	                   passed, or after POST /unhealthy)
//	POST /invocations  answers according to TESTSERVER_MODE, with the
//	                   response header X-Testserver-Instance set to its pid
//	POST /models/{name}/invoke
//	                   a multi-model invocation: the body prefixed with
//	                   "{name}:" (after the same delays as /invocations)
//	GET  /inflight     "<now> <max>": the invocations in progress and the
//	                   most ever in progress at once
//	POST /crash        exits the process with status 2
//	POST /unhealthy    makes every later GET /ping answer 503
//
// Environment:
//
//	SAGEMAKER_BIND_TO_PORT  port to listen on, on 127.0.0.1 (default 8080)
//	TESTSERVER_MODE         echo (default): the request body with its
//	                        Content-Type; upper: the body upper-cased;
//	                        length: the body's length in decimal;
//	                        model-file: the contents of
//	                        $SM_MODEL_DIR/$TESTSERVER_MODEL_FILE; env: the
//	                        process environment as a JSON object;
//	                        stream: TESTSERVER_CHUNKS chunks "chunk <i>\n"
//	                        (text/plain), each flushed, the first at once
//	                        and the next after TESTSERVER_CHUNK_DELAY;
//	                        stream-break: like stream, but the connection
//	                        is cut after half the chunks; garbage: bytes
//	                        that are not an HTTP response, then close
//	TESTSERVER_CHUNKS       chunks in the stream modes (default 5)
//	TESTSERVER_CHUNK_DELAY  pause between chunks (default 10ms)
//	TESTSERVER_MODEL_FILE   file name for model-file mode (default model.txt)
//	TESTSERVER_FAIL_START   1: print "boom: bad model" to stderr, exit 3
//	TESTSERVER_FAIL_START_MARKER  a file name: fail as TESTSERVER_FAIL_START
//	                        does while $SM_MODEL_DIR/<name> exists, so a
//	                        test can make restarts fail and succeed again
//	TESTSERVER_FAIL_FILE    a file holding a number N: while N > 0, a
//	                        start takes one off it and fails as
//	                        TESTSERVER_FAIL_START does (the first N starts
//	                        fail); a missing file fails none
//	TESTSERVER_PING_DELAY   duration before /ping answers 200 (e.g. 2s)
//	TESTSERVER_STATUS       HTTP status for every /invocations answer
//	TESTSERVER_SLEEP        delay before every /invocations answer
//	TESTSERVER_IGNORE_TERM  1: ignore SIGTERM (only SIGKILL stops it)
//	TESTSERVER_SLOW_LOCK    a file path: the one process that creates it
//	                        (first come) sleeps TESTSERVER_SLOW_SLEEP
//	                        before every answer, so exactly one instance
//	                        of a variant is slow
//	TESTSERVER_SLOW_SLEEP   the slow instance's extra delay (default 50ms)
//	TESTSERVER_REJECT       a string: an invocation whose body contains it
//	                        is answered 400 (a record the model rejects)
//	TESTSERVER_CRASH_ONCE   a file path: the first process to receive its
//	                        5th invocation creates it and exits without
//	                        answering (later processes never crash)
//	TESTSERVER_EXEC_PARAMS  a JSON body: GET /execution-parameters answers
//	                        it (without the variable, that path is 404)
//
// The request header X-Testserver-Sleep (a Go duration) adds a delay to
// one invocation; X-Amzn-SageMaker-Custom-Attributes is echoed back. Without TESTSERVER_IGNORE_TERM, SIGTERM shuts the server
// down gracefully and it exits 0.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "testserver:", err)
		os.Exit(1)
	}
}

// config is the server's behaviour, read from the environment.
type config struct {
	port      string
	mode      string
	modelFile string
	pingDelay time.Duration
	status    int
	sleep     time.Duration
	chunks    int
	chunkGap  time.Duration
}

func loadConfig() (config, error) {
	c := config{
		port:      envOr("SAGEMAKER_BIND_TO_PORT", "8080"),
		mode:      envOr("TESTSERVER_MODE", "echo"),
		modelFile: envOr("TESTSERVER_MODEL_FILE", "model.txt"),
		status:    http.StatusOK,
	}
	switch c.mode {
	case "echo", "upper", "length", "model-file", "env", "stream", "stream-break", "garbage":
	default:
		return c, fmt.Errorf("unknown TESTSERVER_MODE %q", c.mode)
	}
	var err error
	if c.pingDelay, err = envDuration("TESTSERVER_PING_DELAY"); err != nil {
		return c, err
	}
	if c.sleep, err = envDuration("TESTSERVER_SLEEP"); err != nil {
		return c, err
	}
	if lock := os.Getenv("TESTSERVER_SLOW_LOCK"); lock != "" {
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			slow := 50 * time.Millisecond
			if os.Getenv("TESTSERVER_SLOW_SLEEP") != "" {
				if slow, err = envDuration("TESTSERVER_SLOW_SLEEP"); err != nil {
					return c, err
				}
			}
			c.sleep += slow
		}
	}
	c.chunks, c.chunkGap = 5, 10*time.Millisecond
	if s := os.Getenv("TESTSERVER_CHUNKS"); s != "" {
		if c.chunks, err = strconv.Atoi(s); err != nil || c.chunks < 0 {
			return c, fmt.Errorf("bad TESTSERVER_CHUNKS %q", s)
		}
	}
	if os.Getenv("TESTSERVER_CHUNK_DELAY") != "" {
		if c.chunkGap, err = envDuration("TESTSERVER_CHUNK_DELAY"); err != nil {
			return c, err
		}
	}
	if s := os.Getenv("TESTSERVER_STATUS"); s != "" {
		if c.status, err = strconv.Atoi(s); err != nil || c.status < 100 || c.status > 599 {
			return c, fmt.Errorf("bad TESTSERVER_STATUS %q", s)
		}
	}
	return c, nil
}

func run() error {
	failStart := os.Getenv("TESTSERVER_FAIL_START") == "1" || takeFailure(os.Getenv("TESTSERVER_FAIL_FILE"))
	if m := os.Getenv("TESTSERVER_FAIL_START_MARKER"); m != "" {
		if _, err := os.Stat(filepath.Join(os.Getenv("SM_MODEL_DIR"), m)); err == nil {
			failStart = true
		}
	}
	if failStart {
		fmt.Fprintln(os.Stderr, "boom: bad model")
		os.Exit(3)
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}

	sigs := make(chan os.Signal, 1)
	if os.Getenv("TESTSERVER_IGNORE_TERM") == "1" {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(sigs, syscall.SIGTERM, os.Interrupt)
	}

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", cfg.port))
	if err != nil {
		return err
	}
	s := &server{cfg: cfg, readyAt: time.Now().Add(cfg.pingDelay)}
	srv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(os.Stdout, "testserver: pid %d listening on %s\n", os.Getpid(), ln.Addr())

	select {
	case err := <-errc:
		return err
	case <-sigs:
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			return err
		}
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}

type server struct {
	cfg       config
	readyAt   time.Time
	unhealthy atomic.Bool
	// inflight and maxInflight count the invocations in progress (both
	// routes), for tests of concurrency caps.
	inflight, maxInflight atomic.Int64
	invocations           atomic.Int64 // /invocations requests received
}

func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", s.ping)
	mux.HandleFunc("POST /invocations", s.invoke)
	mux.HandleFunc("POST /models/{name}/invoke", s.invokeModel)
	if p := os.Getenv("TESTSERVER_EXEC_PARAMS"); p != "" {
		mux.HandleFunc("GET /execution-parameters", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, p)
		})
	}
	mux.HandleFunc("GET /inflight", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%d %d", s.inflight.Load(), s.maxInflight.Load())
	})
	mux.HandleFunc("POST /crash", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(os.Stderr, "testserver: crashing on request")
		os.Exit(2)
	})
	mux.HandleFunc("POST /unhealthy", func(w http.ResponseWriter, r *http.Request) {
		s.unhealthy.Store(true)
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func (s *server) ping(w http.ResponseWriter, r *http.Request) {
	if s.unhealthy.Load() || time.Now().Before(s.readyAt) {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// enter counts an invocation in progress until the returned func runs.
func (s *server) enter() func() {
	n := s.inflight.Add(1)
	for {
		m := s.maxInflight.Load()
		if n <= m || s.maxInflight.CompareAndSwap(m, n) {
			break
		}
	}
	return func() { s.inflight.Add(-1) }
}

// delay waits as /invocations does before answering; false when the
// client went away or the header was bad (answered).
func (s *server) delay(w http.ResponseWriter, r *http.Request) bool {
	delay := s.cfg.sleep
	if h := r.Header.Get("X-Testserver-Sleep"); h != "" {
		d, err := time.ParseDuration(h)
		if err != nil {
			http.Error(w, "bad X-Testserver-Sleep: "+err.Error(), http.StatusBadRequest)
			return false
		}
		delay += d
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return false
		}
	}
	return true
}

func (s *server) invokeModel(w http.ResponseWriter, r *http.Request) {
	defer s.enter()()
	if !s.delay(w, r) {
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, r.PathValue("name")+":")
	w.Write(body)
}

func (s *server) invoke(w http.ResponseWriter, r *http.Request) {
	defer s.enter()()
	if !s.delay(w, r) {
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("X-Testserver-Instance", strconv.Itoa(os.Getpid()))
	if ca := r.Header.Get("X-Amzn-SageMaker-Custom-Attributes"); ca != "" {
		w.Header().Set("X-Amzn-SageMaker-Custom-Attributes", ca)
	}
	if s.cfg.status != http.StatusOK {
		http.Error(w, fmt.Sprintf("testserver: scripted status %d", s.cfg.status), s.cfg.status)
		return
	}
	if marker := os.Getenv("TESTSERVER_CRASH_ONCE"); marker != "" && s.invocations.Add(1) == 5 {
		if f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600); err == nil {
			f.Close()
			fmt.Fprintln(os.Stderr, "testserver: crashing mid-request (TESTSERVER_CRASH_ONCE)")
			os.Exit(2)
		}
	}
	if m := os.Getenv("TESTSERVER_REJECT"); m != "" && strings.Contains(string(body), m) {
		http.Error(w, "testserver: rejected a record containing "+m, http.StatusBadRequest)
		return
	}

	contentType := r.Header.Get("Content-Type")
	var out []byte
	switch s.cfg.mode {
	case "stream", "stream-break":
		s.stream(w, r)
		return
	case "garbage":
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			io.WriteString(conn, "\x00\x01 this is not HTTP\r\n\r\n")
			conn.Close()
		}
		return
	case "echo":
		out = body
	case "upper":
		out = []byte(strings.ToUpper(string(body)))
	case "length":
		out = []byte(strconv.Itoa(len(body)))
		contentType = "text/plain"
	case "model-file":
		dir := os.Getenv("SM_MODEL_DIR")
		if dir == "" {
			http.Error(w, "SM_MODEL_DIR is not set", http.StatusInternalServerError)
			return
		}
		if out, err = os.ReadFile(filepath.Join(dir, s.cfg.modelFile)); err != nil {
			http.Error(w, "read model file: "+err.Error(), http.StatusInternalServerError)
			return
		}
		contentType = "application/octet-stream"
	case "env":
		env := make(map[string]string)
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			env[k] = v
		}
		if out, err = json.Marshal(env); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		contentType = "application/json"
	}
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	w.Write(out)
}

// stream writes the configured chunks, flushing each; stream-break cuts
// the connection after half of them.
func (s *server) stream(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	for i := range s.cfg.chunks {
		if i > 0 {
			select {
			case <-time.After(s.cfg.chunkGap):
			case <-r.Context().Done():
				return
			}
		}
		if s.cfg.mode == "stream-break" && i == s.cfg.chunks/2 {
			if conn, _, err := rc.Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		fmt.Fprintf(w, "chunk %d\n", i)
		if rc.Flush() != nil {
			return
		}
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envDuration(key string) (time.Duration, error) {
	s := os.Getenv(key)
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("bad %s: %w", key, err)
	}
	return d, nil
}

// takeFailure takes one failure off the count in path, under an exclusive
// lock so that instances starting together each take their own.
func takeFailure(path string) bool {
	if path == "" {
		return false
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return false
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || n <= 0 {
		return false
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(n-1)+"\n"), 0); err != nil {
		return false
	}
	return f.Truncate(int64(len(strconv.Itoa(n-1))+1)) == nil
}
