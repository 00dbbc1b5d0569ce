// Package app wires berth's components together from a Config: the state
// store, the object store, the artifact cache, the runtime, the router, the
// control plane and the AWS protocol handlers on one listener, with
// InvokeEndpoint's fast path (internal/h1) in front of net/http.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berth-io/berth/internal/artifacts"
	"github.com/berth-io/berth/internal/awsapi"
	rtapi "github.com/berth-io/berth/internal/awsapi/runtime"
	s3api "github.com/berth-io/berth/internal/awsapi/s3"
	"github.com/berth-io/berth/internal/awsapi/sagemaker"
	"github.com/berth-io/berth/internal/capture"
	"github.com/berth-io/berth/internal/config"
	"github.com/berth-io/berth/internal/controlplane"
	"github.com/berth-io/berth/internal/deadline"
	"github.com/berth-io/berth/internal/fdlimit"
	"github.com/berth-io/berth/internal/h1"
	"github.com/berth-io/berth/internal/images"
	"github.com/berth-io/berth/internal/metrics"
	"github.com/berth-io/berth/internal/objstore"
	"github.com/berth-io/berth/internal/objstore/disk"
	s3store "github.com/berth-io/berth/internal/objstore/s3"
	"github.com/berth-io/berth/internal/ratelog"
	"github.com/berth-io/berth/internal/router"
	"github.com/berth-io/berth/internal/runtime"
	"github.com/berth-io/berth/internal/runtime/process"
	"github.com/berth-io/berth/internal/store"
)

// App is one berth server.
type App struct {
	cfg    config.Config
	logger *slog.Logger
	lock   *dirLock // the data dir's, held until Shutdown

	state   *store.Store
	objects objstore.Store
	fetcher *artifacts.Fetcher
	runtime *runtime.Mux // by image kind: the process runtime today
	router  *router.Router
	metrics *metrics.Metrics
	cp      *controlplane.Service
	rt      *rtapi.Handler
	guard   *awsapi.Guard // browser guard: Host check, CORS
	handler http.Handler
	reqLog  *slog.Logger // rate-limited, for what clients can cause per request

	listener net.Listener
	fast     *h1.Listener // InvokeEndpoint's fast path in front of server
	server   *http.Server
	serveErr chan error
	once     sync.Once
}

// Options carries what is not configuration: the logger and the built-in
// model servers compiled into this binary.
type Options struct {
	Logger *slog.Logger
	// Executable is the berth binary that runs built-in model servers
	// ("<executable> model-server <framework>"); os.Executable by default.
	Executable string
	// Frameworks lists the built-in model servers.
	Frameworks []string
}

// New builds an App from cfg. Nothing listens until Start.
func New(ctx context.Context, cfg config.Config, opts Options) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid config: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own executable: %w", err)
		}
		opts.Executable = exe
	}
	verifier, err := newVerifier(cfg, logger)
	if err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	// The data dir's lock comes before anything touches its processes,
	// spool or database.
	lock, err := lockDataDir(dataDir)
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, logger: logger, lock: lock}
	ok := false
	defer func() {
		if !ok {
			a.closeParts(context.Background())
		}
	}()

	if a.state, err = store.Open(ctx, dataDir); err != nil {
		return nil, err
	}
	if a.objects, err = openObjects(ctx, cfg, dataDir, logger); err != nil {
		return nil, err
	}
	fetcher := artifacts.NewFetcher(a.objects, filepath.Join(dataDir, "artifacts"), artifacts.Options{
		Logger:          logger.With("component", "artifacts"),
		AllowedFileDirs: cfg.ModelData.AllowedFileDirs,
	})
	procs, err := process.New(process.Options{
		StateDir:              filepath.Join(dataDir, "instances"),
		Logger:                logger.With("component", "process-runtime"),
		HealthInterval:        cfg.Runtime.HealthInterval,
		StopGrace:             cfg.Runtime.StopGrace,
		DefaultStartupTimeout: cfg.Runtime.StartupTimeout,
		// Poll readiness often: a local model server is usually up in
		// milliseconds, and CreateEndpoint → InService should be as quick.
		ReadyPollInterval: 5 * time.Millisecond,
		RunAsUser:         cfg.Runtime.RunAsUser,
	})
	if err != nil {
		return nil, err
	}
	a.runtime = runtime.NewMux()
	a.runtime.Register(runtime.KindProcess, procs)
	if ra := procs.RunAs(); ra != nil {
		if err := ra.PrepareDataDir(dataDir, filepath.Join(dataDir, "artifacts")); err != nil {
			return nil, fmt.Errorf("%w; choose a data dir that user can pass through (such as /var/lib/berth), or another runtime.run_as_user", err)
		}
		logger.Info("model processes run unprivileged", "run_as_user", cfg.Runtime.RunAsUser, "uid", ra.UID, "gid", ra.GID)
		if err := ra.Reachable(opts.Executable); err != nil {
			logger.Warn("built-in model servers cannot start: berth's executable is out of reach of runtime.run_as_user", "err", err)
		}
		warnUnreachableImages(logger, ra, cfg.Images)
	}
	a.recoverInstances(ctx)
	a.metrics = metrics.New()
	a.router = router.New(router.Options{
		AccountID: cfg.AccountID,
		Timeout:   cfg.Limits.InvocationTimeout,
		Metrics:   a.metrics,
		EndpointStatus: func(name string) (string, bool) {
			return a.cp.EndpointStatus(context.Background(), name)
		},
	})
	a.cp = controlplane.New(controlplane.Options{
		Store:          a.state,
		Artifacts:      fetcher,
		Images:         images.New(cfg.Images, opts.Executable, opts.Frameworks),
		Runtime:        a.runtime,
		Router:         a.router,
		Region:         cfg.Region,
		AccountID:      cfg.AccountID,
		StartupTimeout: cfg.Runtime.StartupTimeout,
		MaxInstances:   cfg.Limits.MaxInstances,
		DrainTimeout:   cfg.Limits.InvocationTimeout,
		SettleWait:     cfg.Endpoints.SettleWait,
		UnhealthyGrace: cfg.Endpoints.ReplaceUnhealthyAfter,
		NewCapturer: func(endpoint string, cc capture.Config) controlplane.Capturer {
			return capture.New(endpoint, cc, a.objects, capture.Options{FlushInterval: cfg.Capture.FlushInterval, Logger: logger})
		},
		Logger:  logger,
		DataDir: dataDir,
		// Transform jobs read and write the object store and send their
		// mini-batches through the router.
		Objects: a.objects,
		Jobs:    a.router,
	})
	a.startArtifactCache(ctx, fetcher, dataDir)
	// Whatever clients can make berth log once per request goes through
	// a rate limit, so a flood of bad requests cannot flood the log.
	a.reqLog = slog.New(ratelog.New(logger.Handler(), ratelog.Options{}))
	a.rt = rtapi.New(a.router, rtapi.Options{
		MaxPayloadBytes: cfg.Limits.MaxPayloadBytes,
		BodyTimeout:     cfg.Server.BodyTimeout,
		Verifier:        verifier,
		Logger:          a.reqLog,
	})
	extra := map[string]http.Handler{
		"/ping": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) }),
	}
	if cfg.Metrics.Path != "" {
		extra[cfg.Metrics.Path] = a.metrics.Handler()
	}
	// Requests get fixed read and write deadlines, except the streaming
	// transfers: S3 uploads and downloads both ways, and the runtime's
	// answers (relayed as the model produces them), get progress
	// deadlines instead.
	a.handler = deadline.Handler(awsapi.NewHandler(awsapi.Services{
		SageMaker: sagemaker.NewHandler(a.cp, a.reqLog),
		Runtime:   deadline.Stream(a.rt, false, true),
		S3: deadline.Stream(s3api.NewHandler(a.objects, a.reqLog.With("component", "s3-api"),
			// Multipart parts are spooled to disk, not held in memory.
			s3api.WithMultipartDir(filepath.Join(dataDir, "uploads")),
			s3api.WithVirtualHostDomains("localhost"),
			s3api.WithPostPolicy(postPolicySecrets(cfg.Auth))), true, true),
		Extra:              extra,
		Verifier:           verifier,
		MaxSignedBodyBytes: max(cfg.Limits.MaxPayloadBytes, 8<<20),
		SelfAuthenticated: func(r *http.Request) bool {
			return s3api.IsBrowserUpload(r, "localhost")
		},
	}, a.reqLog), deadline.Options{
		Body:     cfg.Server.BodyTimeout,
		Write:    cfg.Server.WriteTimeout,
		Progress: cfg.Server.ProgressTimeout,
	})
	a.guard = awsapi.NewGuard(ctx, awsapi.GuardOptions{
		Listen:         cfg.Listen,
		AllowedHosts:   cfg.AllowedHosts,
		AllowedOrigins: cfg.CORS.AllowedOrigins,
		Logger:         logger.With("component", "browser-guard"),
		// Without credentials the Host check also guards --insecure.
		Unauthenticated: verifier == nil,
	})
	a.handler = a.guard.Wrap(a.handler)
	ok = true
	return a, nil
}

// postPolicySecrets returns the secrets browser upload policies are
// checked against: nil, refusing every browser upload, when no
// credentials are configured.
func postPolicySecrets(auth config.Auth) s3api.SecretLookup {
	if len(auth.Credentials) == 0 {
		return nil
	}
	secrets := make(map[string]string, len(auth.Credentials))
	for _, c := range auth.Credentials {
		secrets[c.AccessKeyID] = c.SecretAccessKey
	}
	return func(id string) (string, bool) {
		s, ok := secrets[id]
		return s, ok
	}
}

func openObjects(ctx context.Context, cfg config.Config, dataDir string, logger *slog.Logger) (objstore.Store, error) {
	if cfg.ObjectStore.Endpoint != "" {
		return s3store.New(ctx, s3store.Config{
			Endpoint:        cfg.ObjectStore.Endpoint,
			Region:          cfg.ObjectStore.Region,
			AccessKeyID:     cfg.ObjectStore.AccessKeyID,
			SecretAccessKey: cfg.ObjectStore.SecretAccessKey,
			UsePathStyle:    cfg.ObjectStore.UsePathStyle,
		}, logger.With("component", "objstore"))
	}
	return disk.Open(filepath.Join(dataDir, "objects"), disk.Options{Logger: logger.With("component", "objstore")})
}

// Start listens on the configured address, restores persisted endpoints
// and serves until Shutdown.
func (a *App) Start(ctx context.Context) error {
	maxConns := a.maxConnections()
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Listen, err)
	}
	a.listener = ln
	// Plain InvokeEndpoint requests are served on the connection's
	// goroutine by the runtime API's fast path; every other connection is
	// handed to net/http. Fast-path invocations run under a context that
	// is never cancelled: Shutdown lets requests in flight finish, as
	// net/http does, and abandons them through the router when its own
	// deadline passes.
	a.fast = h1.NewListener(ln, h1.FastOptions{
		// The browser guard sees only net/http's requests: the fast path
		// leaves it what the guard would refuse.
		// runtime_api.fast_path: false leaves every request to net/http.
		Match: func(req *h1.FastRequest) bool {
			return a.cfg.RuntimeAPI.FastPath && a.rt.FastMatch(req) && a.guard.AllowsFast(req)
		},
		Handle: func(_ context.Context, req *h1.FastRequest, w *h1.FastResponseWriter) {
			a.rt.FastInvoke(context.Background(), req, w)
		},
		MaxBodyBytes:  a.cfg.Limits.MaxPayloadBytes,
		HeaderTimeout: a.cfg.Server.ReadHeaderTimeout,
		IdleTimeout:   a.cfg.Server.IdleTimeout,
		BodyTimeout:   a.cfg.Server.BodyTimeout,
		WriteTimeout:  a.cfg.Server.WriteTimeout,
		MaxConns:      maxConns,
		// Progress deadlines count 32 KiB steps (see internal/deadline).
		NotSentLowat: 128 << 10,
		Logger:       a.reqLog,
	})
	// No ReadTimeout or WriteTimeout: they would bound whole requests and
	// cut long transfers and response streams; the deadline handler sets
	// per-request deadlines instead.
	a.server = &http.Server{
		Handler:           a.handler,
		ReadHeaderTimeout: a.cfg.Server.ReadHeaderTimeout,
		IdleTimeout:       a.cfg.Server.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(a.reqLog.Handler(), slog.LevelDebug),
	}
	// Calls waiting for their endpoint to settle answer at once on
	// shutdown instead of holding it up.
	a.server.RegisterOnShutdown(a.cp.StopSettleWaits)
	a.serveErr = make(chan error, 1)
	go func() { a.serveErr <- a.server.Serve(a.fast) }()
	if err := a.cp.Restore(ctx); err != nil {
		return fmt.Errorf("restore endpoints: %w", err)
	}
	a.logger.Info("berth serving", "addr", ln.Addr().String(), "data_dir", a.cfg.DataDir)
	return nil
}

// maxConnections raises the open-file limit as far as allowed and returns
// the cap on client connections: server.max_connections, or one derived
// from the limit.
func (a *App) maxConnections() int {
	limit, err := fdlimit.Raise()
	if err != nil {
		a.logger.Warn("cannot raise the open-file limit", "err", err)
	}
	n := a.cfg.Server.MaxConnections
	if n == 0 {
		n = fdlimit.MaxConnections(limit)
	}
	a.logger.Info("client connection limit", "max_connections", n, "open_file_limit", limit)
	if limit != 0 && limit < 4096 {
		a.logger.Warn("the open-file limit is low for a server; raise its hard limit (ulimit -Hn, systemd LimitNOFILE=) to serve more connections", "open_file_limit", limit)
	}
	return n
}

// Addr returns the address the server listens on (useful with port 0).
func (a *App) Addr() string {
	if a.listener == nil {
		return ""
	}
	return a.listener.Addr().String()
}

// Wait blocks until the server stops serving on its own, with the reason.
func (a *App) Wait() error {
	err := <-a.serveErr
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests, finishes those in flight, stops every
// model instance and closes the stores.
func (a *App) Shutdown(ctx context.Context) error {
	var err error
	a.once.Do(func() {
		if a.fast != nil {
			stop := context.AfterFunc(ctx, a.router.Abandon)
			err = a.server.Shutdown(ctx)
			if ferr := a.fast.Shutdown(ctx); err == nil {
				err = ferr
			}
			stop()
		}
		a.closeParts(ctx)
	})
	return err
}

// recoverInstances lets every runtime deal with the instances an earlier
// berth left: the process runtime kills its processes, a runtime whose
// containers outlive berth adopts them. The control plane starts what its
// endpoints need afresh, so adopted instances are stopped.
func (a *App) recoverInstances(ctx context.Context) {
	adopted, n, err := a.runtime.Recover(ctx)
	if err != nil {
		a.logger.Warn("recover model instances left by an earlier run", "err", err)
	}
	if n > 0 {
		a.logger.Info("stopped model instances left by an earlier run", "count", n)
	}
	for _, in := range adopted {
		if err := in.Stop(ctx); err != nil {
			a.logger.Warn("stop adopted instance", "instance", in.ID(), "err", err)
		}
	}
}

func (a *App) closeParts(ctx context.Context) {
	if a.cp != nil {
		a.cp.Close(ctx)
	}
	if a.runtime != nil {
		a.runtime.Close(ctx)
	}
	if a.fetcher != nil {
		a.fetcher.Close()
	}
	if a.router != nil {
		a.router.Close()
	}
	if a.state != nil {
		a.state.Close()
	}
	a.lock.release()
}
