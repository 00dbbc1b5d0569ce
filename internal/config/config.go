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
	"os"
	"regexp"
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
	// Capture tunes data capture.
	Capture Capture `yaml:"capture"`
	// Server bounds what a client connection may hold: timeouts and the
	// connection limit.
	Server Server `yaml:"server"`
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
	if c.Limits.MaxPayloadBytes <= 0 || c.Limits.InvocationTimeout <= 0 || c.Limits.MaxInstances <= 0 {
		return errors.New("limits: max_payload_bytes, invocation_timeout and max_instances must be positive")
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
