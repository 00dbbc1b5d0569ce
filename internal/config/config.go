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
		},
		Capture: Capture{FlushInterval: 5 * time.Second},
		Metrics: Metrics{Path: "/metrics"},
		Limits: Limits{
			MaxPayloadBytes:   6 << 20,
			InvocationTimeout: 60 * time.Second,
			MaxInstances:      64,
		},
		Endpoints:  Endpoints{SettleWait: 5 * time.Second},
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
	if err := c.validateBrowser(); err != nil {
		return err
	}
	if err := c.Auth.validate(); err != nil {
		return err
	}
	if p := c.Metrics.Path; p != "" && (p[0] != '/' || p == "/" || p == "/ping" || strings.HasPrefix(p, "/endpoints/") || strings.ContainsAny(p, "?# ")) {
		return fmt.Errorf("metrics: path %q must be an absolute path other than /, /ping and /endpoints/..., or empty to turn metrics off", p)
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
}

// MaxSettleWait bounds Endpoints.SettleWait.
const MaxSettleWait = 30 * time.Second
