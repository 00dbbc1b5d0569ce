package modelserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server serves one Framework's models over the SageMaker container
// contract. Create it with New, then call Run (or mount Handler).
type Server struct {
	fw  Framework
	cfg Config
	log *slog.Logger

	mu      sync.RWMutex
	def     Model
	models  map[string]*loaded
	loading map[string]bool
	used    int64
}

type loaded struct {
	name, url string
	model     Model
	size      int64
}

// New returns a server for fw; it loads nothing until Run or LoadDefault.
func New(fw Framework, cfg Config) (*Server, error) {
	if fw == nil {
		return nil, errors.New("modelserver: nil framework")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("modelserver config: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{
		fw:      fw,
		cfg:     cfg,
		log:     log.With("component", "modelserver", "framework", fw.Name()),
		models:  map[string]*loaded{},
		loading: map[string]bool{},
	}, nil
}

// LoadDefault loads the single model from Config.ModelDir.
func (s *Server) LoadDefault(ctx context.Context) error {
	start := time.Now()
	m, err := s.fw.Load(ctx, s.cfg.ModelDir)
	if err != nil {
		return fmt.Errorf("load model from %s: %w", s.cfg.ModelDir, err)
	}
	s.mu.Lock()
	s.def = m
	s.mu.Unlock()
	s.log.Info("model loaded", "dir", s.cfg.ModelDir, "took", time.Since(start))
	return nil
}

// Run loads the default model (unless multi-model), listens, calls ready
// (if not nil) with the bound address, and serves until ctx is done; then
// it shuts down gracefully and returns nil.
func (s *Server) Run(ctx context.Context, ready func(net.Addr)) error {
	if !s.cfg.MultiModel {
		if err := s.LoadDefault(ctx); err != nil {
			return err
		}
	}
	host := "127.0.0.1"
	if s.cfg.BindAll {
		host = "0.0.0.0"
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(s.cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.log.Info("listening", "addr", ln.Addr().String(), "multi_model", s.cfg.MultiModel)
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("shutdown", "err", err)
	}
	<-errc
	return nil
}

// Handler returns the HTTP handler of the container contract.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("GET /execution-parameters", handler(s.log, s.executionParameters))
	mux.Handle("POST /invocations", handler(s.log, s.invocations))
	mux.Handle("POST /models", handler(s.log, s.loadModel))
	mux.Handle("GET /models", handler(s.log, s.listModels))
	mux.Handle("GET /models/{name}", handler(s.log, s.getModel))
	mux.Handle("DELETE /models/{name}", handler(s.log, s.unloadModel))
	mux.Handle("POST /models/{name}/invoke", handler(s.log, s.invokeModel))
	return mux
}

// handler adapts a handler that returns an error: the error's status and
// client-safe message become a text/plain response.
func handler(log *slog.Logger, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		status := StatusOf(err)
		msg := http.StatusText(status)
		var e *Error
		if errors.As(err, &e) {
			msg = e.Message
		}
		if status >= 500 {
			log.Error("request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		} else {
			log.Debug("request rejected", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, msg+"\n")
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
	return nil
}

type executionParameters struct {
	MaxConcurrentTransforms int
	BatchStrategy           string
	MaxPayloadInMB          int
}

func (s *Server) executionParameters(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, executionParameters{
		MaxConcurrentTransforms: s.cfg.MaxConcurrentTransforms,
		BatchStrategy:           "MULTI_RECORD",
		MaxPayloadInMB:          int(s.cfg.MaxPayloadBytes >> 20),
	})
}

func (s *Server) invocations(w http.ResponseWriter, r *http.Request) error {
	s.mu.RLock()
	m := s.def
	s.mu.RUnlock()
	if m == nil {
		return Errorf(http.StatusNotFound, "no model loaded; this is a multi-model server, use POST /models/{name}/invoke")
	}
	return s.predict(w, r, m)
}

func (s *Server) invokeModel(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	s.mu.RLock()
	e := s.models[name]
	s.mu.RUnlock()
	if e == nil {
		return Errorf(http.StatusNotFound, "model %q is not loaded", name)
	}
	return s.predict(w, r, e.model)
}

func (s *Server) predict(w http.ResponseWriter, r *http.Request, m Model) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxPayloadBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return Errorf(http.StatusRequestEntityTooLarge, "payload larger than %d bytes", mbe.Limit)
		}
		return Errorf(http.StatusBadRequest, "read body: %w", err)
	}
	if len(body) == 0 {
		// As the SageMaker XGBoost container does.
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	resp, err := m.Predict(r.Context(), &Request{
		ContentType: r.Header.Get("Content-Type"),
		Accept:      r.Header.Get("Accept"),
		Body:        body,
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", resp.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(resp.Body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp.Body)
	return nil
}

type loadRequest struct {
	ModelName string `json:"model_name"`
	URL       string `json:"url"`
}

type modelInfo struct {
	ModelName string `json:"modelName"`
	ModelURL  string `json:"modelUrl"`
}

func (s *Server) loadModel(w http.ResponseWriter, r *http.Request) error {
	var req loadRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(&req); err != nil {
		return Errorf(http.StatusBadRequest, "invalid load request: %w", err)
	}
	if req.ModelName == "" || req.URL == "" {
		return Errorf(http.StatusBadRequest, "model_name and url are required")
	}
	if strings.ContainsAny(req.ModelName, "/\x00") {
		return Errorf(http.StatusBadRequest, "invalid model_name %q", req.ModelName)
	}
	dir := strings.TrimPrefix(req.URL, "file://")
	st, err := os.Stat(dir)
	if err != nil || !st.IsDir() {
		return Errorf(http.StatusNotFound, "model url %q is not a local directory", req.URL)
	}

	s.mu.Lock()
	if s.models[req.ModelName] != nil || s.loading[req.ModelName] {
		s.mu.Unlock()
		return Errorf(http.StatusConflict, "model %q is already loaded", req.ModelName)
	}
	if s.cfg.MemoryBudget > 0 && s.used >= s.cfg.MemoryBudget {
		s.mu.Unlock()
		return Errorf(http.StatusInsufficientStorage, "not enough memory to load model %q: %d of %d bytes in use", req.ModelName, s.used, s.cfg.MemoryBudget)
	}
	s.loading[req.ModelName] = true
	s.mu.Unlock()

	start := time.Now()
	m, err := s.fw.Load(r.Context(), dir)

	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.loading, req.ModelName)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return err
		}
		return &Error{Status: http.StatusInternalServerError, Message: fmt.Sprintf("load model %q: %v", req.ModelName, err), Err: err}
	}
	size := dirSize(dir)
	if sz, ok := m.(Sizer); ok {
		size = sz.MemoryBytes()
	}
	if s.cfg.MemoryBudget > 0 && s.used+size > s.cfg.MemoryBudget {
		return Errorf(http.StatusInsufficientStorage, "not enough memory to load model %q: %d of %d bytes in use, model needs %d", req.ModelName, s.used, s.cfg.MemoryBudget, size)
	}
	s.models[req.ModelName] = &loaded{name: req.ModelName, url: req.URL, model: m, size: size}
	s.used += size
	s.log.Info("model loaded", "model", req.ModelName, "url", req.URL, "bytes", size, "took", time.Since(start))
	return writeJSON(w, http.StatusOK, map[string]string{"status": fmt.Sprintf("Model %q loaded", req.ModelName)})
}

// dirSize is the summed size of regular files under dir: the fallback
// memory estimate of a model.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func (s *Server) listModels(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	start, size := 0, 100
	if v := q.Get("next_page_token"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Errorf(http.StatusBadRequest, "invalid next_page_token %q", v)
		}
		start = n
	}
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return Errorf(http.StatusBadRequest, "invalid page_size %q", v)
		}
		size = n
	}
	s.mu.RLock()
	names := make([]string, 0, len(s.models))
	for n := range s.models {
		names = append(names, n)
	}
	sort.Strings(names)
	out := struct {
		Models        []modelInfo `json:"models"`
		NextPageToken string      `json:"nextPageToken,omitempty"`
	}{Models: []modelInfo{}}
	for i := start; i < len(names) && i < start+size; i++ {
		e := s.models[names[i]]
		out.Models = append(out.Models, modelInfo{e.name, e.url})
	}
	if start+size < len(names) {
		out.NextPageToken = strconv.Itoa(start + size)
	}
	s.mu.RUnlock()
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) getModel(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	s.mu.RLock()
	e := s.models[name]
	s.mu.RUnlock()
	if e == nil {
		return Errorf(http.StatusNotFound, "model %q is not loaded", name)
	}
	return writeJSON(w, http.StatusOK, modelInfo{e.name, e.url})
}

func (s *Server) unloadModel(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	s.mu.Lock()
	e := s.models[name]
	if e != nil {
		delete(s.models, name)
		s.used -= e.size
	}
	s.mu.Unlock()
	if e == nil {
		return Errorf(http.StatusNotFound, "model %q is not loaded", name)
	}
	s.log.Info("model unloaded", "model", name)
	return writeJSON(w, http.StatusOK, map[string]string{"status": fmt.Sprintf("Model %q unloaded", name)})
}
