// Package config holds berth's settings: the command-line flags, their
// environment variables and the optional YAML file, with defaults in one
// place and validation before anything starts.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the complete configuration of one berth server.
type Config struct {
	// Listen is the address of the one port that speaks every AWS
	// protocol. Loopback by default: exposing berth is a deliberate choice.
	Listen string `yaml:"listen"`
	// DataDir holds the SQLite state, the embedded object store, the
	// artifact cache and instance logs.
	DataDir string `yaml:"data_dir"`
	// Region is used in ARNs and accepted in SigV4 credential scopes.
	Region string `yaml:"region"`
	// AccountID is the 12-digit account id used in ARNs.
	AccountID string `yaml:"account_id"`
	// Images maps an image name, as written in CreateModel, to a local
	// command that serves the SageMaker container contract.
	Images map[string]Image `yaml:"images"`
	// ObjectStore, when Endpoint is set, sends s3:// URIs to an external
	// S3-compatible service instead of the embedded store.
	ObjectStore ObjectStore `yaml:"object_store"`
	// Runtime tunes how model instances are started and watched.
	Runtime Runtime `yaml:"runtime"`
	// Limits are the request limits of the inference APIs.
	Limits Limits `yaml:"limits"`
	// RuntimeAPI tunes how the runtime API (InvokeEndpoint) is served.
	RuntimeAPI RuntimeAPI `yaml:"runtime_api"`
	// Capture tunes data capture.
	Capture Capture `yaml:"capture"`
	// Endpoints tunes the endpoint API calls.
	Endpoints Endpoints `yaml:"endpoints"`
	// Auth holds the access key pairs requests must be signed with.
	Auth Auth `yaml:"auth"`
	// Metrics places the Prometheus endpoint.
	Metrics Metrics `yaml:"metrics"`
	// CORS lists the web origins a browser may call berth from. Empty
	// (the default): no CORS headers, preflights refused, and requests a
	// browser marks as cross-origin refused.
	CORS CORS `yaml:"cors"`
	// AllowedHosts are Host header names (or IP addresses) served besides
	// the loopback ones (localhost, *.localhost, 127.0.0.0/8, ::1); an
	// entry "*.example.com" allows every name under example.com. On a
	// loopback address any other Host is refused, which stops DNS
	// rebinding; on another address Host is checked only when this is
	// set.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// Artifacts bounds the cache of unpacked model data.
	Artifacts Artifacts `yaml:"artifacts"`
	// ModelData says where model data may come from besides the object
	// store.
	ModelData ModelData `yaml:"model_data"`
	// Server bounds what a client connection may hold: timeouts and the
	// connection limit.
	Server Server `yaml:"server"`
}

// Auth configures SigV4 authentication. With credentials, every request
// but GET /ping and the metrics path must be signed with one of them.
// Without, berth accepts any signature (or none), and so refuses to
// listen beyond loopback unless Insecure is set.
type Auth struct {
	// Credentials are the access key pairs clients may sign with;
	// BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY add one more.
	Credentials []Credential `yaml:"credentials"`
	// Insecure lets berth listen on a non-loopback address with no
	// credentials, accepting every request. Only the --insecure flag
	// (BERTH_INSECURE) sets it, never the file.
	Insecure bool `yaml:"-"`
}

// Credential is one access key pair.
type Credential struct {
	// AccessKeyID is the public half, as clients send it.
	AccessKeyID string `yaml:"access_key_id"`
	// SecretAccessKey is the signing secret.
	SecretAccessKey string `yaml:"secret_access_key"`
}

// AddEnvCredentials adds the pair in BERTH_ACCESS_KEY_ID and
// BERTH_SECRET_ACCESS_KEY, read through getenv, when set.
func (a *Auth) AddEnvCredentials(getenv func(string) string) error {
	id, secret := getenv("BERTH_ACCESS_KEY_ID"), getenv("BERTH_SECRET_ACCESS_KEY")
	switch {
	case id == "" && secret == "":
		return nil
	case id == "" || secret == "":
		return errors.New("BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY must be set together")
	}
	a.Credentials = append(a.Credentials, Credential{AccessKeyID: id, SecretAccessKey: secret})
	return nil
}

// Metrics places the Prometheus endpoint, which is never authenticated.
type Metrics struct {
	// Path serves GET requests for metrics; empty turns the endpoint off.
	Path string `yaml:"path"`
}

// CORS configures cross-origin requests from web pages.
type CORS struct {
	// AllowedOrigins are origins ("https://app.example.com", scheme, host
	// and optional port) whose pages may call berth: each is echoed in
	// Access-Control-Allow-Origin, with Vary: Origin.
	AllowedOrigins []string `yaml:"allowed_origins"`
}

// Artifacts bounds the cache of unpacked model data under the data dir.
type Artifacts struct {
	// CacheMaxBytes is the cache's budget in bytes. Models no model,
	// endpoint or running instance uses are evicted, least recently used
	// first, once the cache holds more (at start-up and whenever it grows
	// past it). Zero means a quarter of the free space on the data dir's
	// file system, measured at start-up.
	CacheMaxBytes int64 `yaml:"cache_max_bytes"`
}

// ModelData limits where model data may be read from.
type ModelData struct {
	// AllowedFileDirs are the host directories that file:// model data
	// (ModelDataUrl, ModelDataSource S3Uri) may name: the directory or
	// anything below it, with symbolic links resolved. None by default:
	// every file:// URL is refused, since whoever reaches the API could
	// otherwise read any host file berth can read.
	AllowedFileDirs []string `yaml:"allowed_file_dirs"`
}

// Server bounds client connections, so that slow or abusive clients
// cannot hold berth's connections and file descriptors.
type Server struct {
	// ReadHeaderTimeout bounds reading a request's header block (and a new
	// connection's first request line). Default 30s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// BodyTimeout bounds reading a request body on every path but the
	// streaming ones (S3 object transfers), counted from the end of the
	// headers. Default 60s.
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// WriteTimeout bounds writing a response on every path but the
	// streaming ones, counted from the response's first byte. Default 60s.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection. Default 5m.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// ProgressTimeout is the progress deadline of streaming transfers: S3
	// uploads and downloads, and InvokeEndpoint answers relayed as the
	// model produces them (response streams, answers too large to buffer).
	// Each 32 KiB that moves renews it, so a large but live transfer is
	// never cut, while one that stalls or trickles slower than 32 KiB per
	// ProgressTimeout is. Default 30s.
	ProgressTimeout time.Duration `yaml:"progress_timeout"`
	// MaxConnections caps the client connections served at once; further
	// connections wait in the kernel's accept queue until one closes.
	// 0 derives the cap from the open-file limit (RLIMIT_NOFILE, raised to
	// its hard limit at start-up), leaving the rest for model processes,
	// upstream connections, the database and object files.
	MaxConnections int `yaml:"max_connections"`
}

// Capture tunes how captured invocations are written.
type Capture struct {
	// FlushInterval is the longest a captured record waits in memory
	// before it is written to the object store.
	FlushInterval time.Duration `yaml:"flush_interval"`
}

// Image is a local command that plays the part of a container image.
type Image struct {
	// Command is the program and its arguments.
	Command []string `yaml:"command"`
	// Env is added to the process environment.
	Env map[string]string `yaml:"env"`
	// WorkDir is the working directory of the process.
	WorkDir string `yaml:"workdir"`
}

// ObjectStore configures an external S3-compatible service.
type ObjectStore struct {
	// Endpoint is the service URL, e.g. http://127.0.0.1:9000 for MinIO.
	// Empty means the embedded store.
	Endpoint string `yaml:"endpoint"`
	// Region is the region to sign requests for.
	Region string `yaml:"region"`
	// AccessKeyID and SecretAccessKey are the credentials; when empty the
	// AWS SDK's default credential chain is used.
	AccessKeyID     string `yaml:"access_key_id"`
	SecretAccessKey string `yaml:"secret_access_key"`
	// UsePathStyle addresses buckets as http://host/bucket (MinIO needs it).
	UsePathStyle bool `yaml:"use_path_style"`
}

// Runtime tunes the instance runtime.
type Runtime struct {
	// StartupTimeout is how long a new instance may take to answer
	// GET /ping, unless the variant sets
	// ContainerStartupHealthCheckTimeoutInSeconds.
	StartupTimeout time.Duration `yaml:"startup_timeout"`
	// HealthInterval is the period of liveness checks.
	HealthInterval time.Duration `yaml:"health_interval"`
	// StopGrace is how long an instance has to exit after SIGTERM.
	StopGrace time.Duration `yaml:"stop_grace"`
	// RunAsUser is the user that model processes run as when berth runs
	// as root: a user name, or "uid" or "uid:gid". It is ignored when
	// berth is not root (model processes then run as berth's own user).
	RunAsUser string `yaml:"run_as_user"`
}

// Limits bounds the inference APIs, as SageMaker does.
type Limits struct {
	// MaxPayloadBytes bounds an InvokeEndpoint request body.
	MaxPayloadBytes int64 `yaml:"max_payload_bytes"`
	// InvocationTimeout bounds one real-time invocation.
	InvocationTimeout time.Duration `yaml:"invocation_timeout"`
	// MaxInstances bounds the instances of all endpoints together.
	MaxInstances int `yaml:"max_instances"`
}

// RuntimeAPI tunes how the runtime API is served.
type RuntimeAPI struct {
	// FastPath serves plain InvokeEndpoint requests on the connection's
	// goroutine, without net/http (default true). The answers are the
	// same either way; turning it off sends every request through
	// net/http, to rule the fast path out when chasing a problem.
	FastPath bool `yaml:"fast_path"`
}

// Default returns the configuration berth runs with when nothing is set.
func Default() Config {
	return Config{
		Listen:    "127.0.0.1:7070",
		DataDir:   "./berth-data",
		Region:    "us-east-1",
		AccountID: "000000000000",
		Runtime: Runtime{
			StartupTimeout: 60 * time.Second,
			HealthInterval: 5 * time.Second,
			StopGrace:      30 * time.Second,
			RunAsUser:      "nobody",
		},
		Capture: Capture{FlushInterval: 5 * time.Second},
		Metrics: Metrics{Path: "/metrics"},
		Server: Server{
			ReadHeaderTimeout: 30 * time.Second,
			BodyTimeout:       60 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       5 * time.Minute,
			ProgressTimeout:   30 * time.Second,
		},
		Limits: Limits{
			MaxPayloadBytes:   6 << 20,
			InvocationTimeout: 60 * time.Second,
			MaxInstances:      64,
		},
		Endpoints:  Endpoints{SettleWait: 5 * time.Second, ReplaceUnhealthyAfter: 2 * time.Minute},
		RuntimeAPI: RuntimeAPI{FastPath: true},
	}
}

// LoadFile reads a YAML file over the defaults. Unknown keys are errors, so
// a typo never silently falls back to a default.
func LoadFile(cfg *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	return Parse(cfg, data)
}

// Parse decodes YAML over cfg.
func Parse(cfg *Config, data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("parse config: %w", err)
	}
	return nil
}

var (
	accountPattern = regexp.MustCompile(`^[0-9]{12}$`)
	regionPattern  = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
)

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("listen %q: %w", c.Listen, err)
	}
	if c.DataDir == "" {
		return errors.New("data dir must be set")
	}
	if !accountPattern.MatchString(c.AccountID) {
		return fmt.Errorf("account_id %q must be 12 digits", c.AccountID)
	}
	if !regionPattern.MatchString(c.Region) {
		return fmt.Errorf("region %q is not a region name", c.Region)
	}
	for name, img := range c.Images {
		if len(img.Command) == 0 {
			return fmt.Errorf("images: %q has no command", name)
		}
	}
	if c.Runtime.StartupTimeout <= 0 || c.Runtime.HealthInterval <= 0 || c.Runtime.StopGrace < 0 {
		return errors.New("runtime: startup_timeout and health_interval must be positive")
	}
	if c.Runtime.RunAsUser == "" {
		return errors.New("runtime: run_as_user must name a user (a name, uid or uid:gid)")
	}
	for _, d := range c.ModelData.AllowedFileDirs {
		if !filepath.IsAbs(d) {
			return fmt.Errorf("model_data: allowed_file_dirs entry %q must be an absolute path", d)
		}
	}
	if c.Capture.FlushInterval <= 0 {
		return errors.New("capture: flush_interval must be positive")
	}
	if c.Artifacts.CacheMaxBytes < 0 {
		return errors.New("artifacts: cache_max_bytes must not be negative (0 means a quarter of the free disk)")
	}
	if c.Limits.MaxPayloadBytes <= 0 || c.Limits.InvocationTimeout <= 0 || c.Limits.MaxInstances <= 0 {
		return errors.New("limits: max_payload_bytes, invocation_timeout and max_instances must be positive")
	}
	if c.Endpoints.SettleWait < 0 || c.Endpoints.SettleWait > MaxSettleWait {
		return fmt.Errorf("endpoints: settle_wait %s must be between 0 and %s", c.Endpoints.SettleWait, MaxSettleWait)
	}
	if c.Endpoints.ReplaceUnhealthyAfter < time.Second {
		return fmt.Errorf("endpoints: replace_unhealthy_after %s must be at least 1s", c.Endpoints.ReplaceUnhealthyAfter)
	}
	if err := c.validateBrowser(); err != nil {
		return err
	}
	if err := c.Auth.validate(); err != nil {
		return err
	}
	if p := c.Metrics.Path; p != "" && (p[0] != '/' || p == "/" || p == "/ping" || strings.HasPrefix(p, "/endpoints/") || strings.ContainsAny(p, "?# ")) {
		return fmt.Errorf("metrics: path %q must be an absolute path other than /, /ping and /endpoints/..., or empty to turn metrics off", p)
	}
	if err := c.Server.validate(); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

func (s *Server) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"read_header_timeout", s.ReadHeaderTimeout}, {"body_timeout", s.BodyTimeout},
		{"write_timeout", s.WriteTimeout}, {"idle_timeout", s.IdleTimeout},
		{"progress_timeout", s.ProgressTimeout},
	} {
		if d.v <= 0 {
			return fmt.Errorf("%s must be positive, not %s", d.name, d.v)
		}
	}
	if s.MaxConnections < 0 {
		return fmt.Errorf("max_connections must be 0 (derived from the open-file limit) or positive, not %d", s.MaxConnections)
	}
	return nil
}

func (a *Auth) validate() error {
	seen := make(map[string]bool, len(a.Credentials))
	for i, c := range a.Credentials {
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return fmt.Errorf("auth: credential %d needs both access_key_id and secret_access_key", i+1)
		}
		if strings.ContainsAny(c.AccessKeyID, "/ ,=") {
			return fmt.Errorf("auth: access_key_id %q must not contain '/', ',', '=' or spaces", c.AccessKeyID)
		}
		if seen[c.AccessKeyID] {
			return fmt.Errorf("auth: access_key_id %q is listed twice", c.AccessKeyID)
		}
		seen[c.AccessKeyID] = true
	}
	return nil
}

// validateBrowser checks cors.allowed_origins and allowed_hosts.
func (c *Config) validateBrowser() error {
	for _, o := range c.CORS.AllowedOrigins {
		if err := checkOrigin(o); err != nil {
			return fmt.Errorf("cors: allowed_origins: %w", err)
		}
	}
	for _, h := range c.AllowedHosts {
		if !hostPattern.MatchString(h) {
			if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err != nil {
				return fmt.Errorf("allowed_hosts: %q is not a host name, \"*.\" and a domain, or an IP address (no scheme, no port)", h)
			}
		}
	}
	return nil
}

// hostPattern matches a host name, optionally "*." and a domain.
var hostPattern = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?$`)

// checkOrigin accepts a web origin: http or https, a host, an optional
// port, nothing else. "*" is refused: a listed origin is a deliberate
// grant.
func checkOrigin(o string) error {
	u, err := url.Parse(strings.TrimSuffix(o, "/"))
	if err != nil {
		return fmt.Errorf("%q: %w", o, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not an origin: write scheme, host and optional port, as https://app.example.com:8443", o)
	}
	return nil
}

// Endpoints tunes how CreateEndpoint and UpdateEndpoint answer.
type Endpoints struct {
	// SettleWait is how long CreateEndpoint, UpdateEndpoint and
	// UpdateEndpointWeightsAndCapacities wait, before they answer, for the
	// endpoint to settle (InService or Failed). The AWS SDKs' waiters
	// describe the endpoint once and then sleep 30 s between polls, so an
	// endpoint that settles within this bound is seen InService by a
	// waiter's first poll. The answer is SageMaker's either way, only
	// later; 0 answers at once. At most 30 s, well within the SDKs' 60 s
	// read timeout (a timed-out CreateEndpoint retried by an SDK would fail
	// as already existing).
	SettleWait time.Duration `yaml:"settle_wait"`
	// ReplaceUnhealthyAfter is how long an endpoint's instance may fail
	// its health checks (while the runtime restarts it) before berth
	// stops it and starts a new one in its place. At least 1 s; default
	// 2 min, which leaves a slow model time to load again after a crash.
	ReplaceUnhealthyAfter time.Duration `yaml:"replace_unhealthy_after"`
}

// MaxSettleWait bounds Endpoints.SettleWait.
const MaxSettleWait = 30 * time.Second
