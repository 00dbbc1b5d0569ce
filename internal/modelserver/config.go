package modelserver

import (
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
)

// Config configures a Server. DefaultConfig and ConfigFromEnv fill the
// defaults.
type Config struct {
	// Port is the TCP port to listen on (SAGEMAKER_BIND_TO_PORT, default
	// 8080; 0 picks a free port, reported by Server.Addr).
	Port int
	// BindAll listens on all interfaces instead of 127.0.0.1
	// (SAGEMAKER_BIND_ALL=true). Inside a container it must be set, since
	// the platform connects from outside the container's loopback.
	BindAll bool
	// ModelDir holds the model of a single-model server (SM_MODEL_DIR,
	// default /opt/ml/model).
	ModelDir string
	// MultiModel starts without a model and serves only the multi-model API
	// (SAGEMAKER_MULTI_MODEL=true).
	MultiModel bool
	// MemoryBudget bounds the summed size of loaded models in bytes; a load
	// past it is refused with 507 (BERTH_MODEL_MEMORY_BUDGET; 0 = no limit).
	MemoryBudget int64
	// MaxPayloadBytes bounds request bodies (SAGEMAKER_MAX_PAYLOAD_IN_MB or
	// 6 MiB).
	MaxPayloadBytes int64
	// MaxConcurrentTransforms is reported by /execution-parameters
	// (SAGEMAKER_MAX_CONCURRENT_TRANSFORMS, default the number of CPUs).
	MaxConcurrentTransforms int
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Port:                    8080,
		ModelDir:                "/opt/ml/model",
		MaxPayloadBytes:         6 << 20,
		MaxConcurrentTransforms: runtime.NumCPU(),
	}
}

// ConfigFromEnv applies the SageMaker container environment variables to
// the defaults; getenv is usually os.Getenv.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	if v := getenv("SAGEMAKER_BIND_TO_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("SAGEMAKER_BIND_TO_PORT %q: %w", v, err)
		}
		c.Port = p
	}
	c.BindAll = isTrue(getenv("SAGEMAKER_BIND_ALL"))
	if v := getenv("SM_MODEL_DIR"); v != "" {
		c.ModelDir = v
	}
	c.MultiModel = isTrue(getenv("SAGEMAKER_MULTI_MODEL"))
	if v := getenv("BERTH_MODEL_MEMORY_BUDGET"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return c, fmt.Errorf("BERTH_MODEL_MEMORY_BUDGET %q: %w", v, err)
		}
		c.MemoryBudget = n
	}
	if v := getenv("SAGEMAKER_MAX_PAYLOAD_IN_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("SAGEMAKER_MAX_PAYLOAD_IN_MB %q: %w", v, err)
		}
		c.MaxPayloadBytes = max(c.MaxPayloadBytes, int64(n)<<20)
	}
	if v := getenv("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS %q: %w", v, err)
		}
		c.MaxConcurrentTransforms = n
	}
	return c, c.Validate()
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("port %d out of range", c.Port)
	}
	if !c.MultiModel && c.ModelDir == "" {
		return fmt.Errorf("model dir is required unless multi-model")
	}
	if c.MemoryBudget < 0 || c.MaxPayloadBytes <= 0 || c.MaxConcurrentTransforms <= 0 {
		return fmt.Errorf("memory budget, payload limit and concurrency must be positive")
	}
	return nil
}

func isTrue(v string) bool {
	b, _ := strconv.ParseBool(strings.TrimSpace(v))
	return b
}
