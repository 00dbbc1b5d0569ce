// Package builtin is the registry of berth's built-in model-server
// frameworks and the entry point of `berth model-server <framework>`.
package builtin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"

	"github.com/berth-io/berth/internal/modelserver"
	"github.com/berth-io/berth/internal/modelserver/xgboost"
)

// Factory builds a framework from the container environment.
type Factory func(getenv func(string) string, log *slog.Logger) (modelserver.Framework, error)

// frameworks is the registry: adding a framework is one package beside
// internal/modelserver/xgboost and one line here.
var frameworks = map[string]Factory{
	"xgboost": func(getenv func(string) string, log *slog.Logger) (modelserver.Framework, error) {
		opt := xgboost.OptionsFromEnv(getenv)
		opt.Logger = log
		return xgboost.New(opt), nil
	},
}

// Frameworks lists the registered framework names.
func Frameworks() []string {
	names := make([]string, 0, len(frameworks))
	for n := range frameworks {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ErrUnknownFramework is returned by Main for a framework not registered.
var ErrUnknownFramework = errors.New("unknown model-server framework")

// Main runs `berth model-server <framework> [flags]` until ctx is done.
// Configuration comes from the SageMaker container environment
// (SAGEMAKER_BIND_TO_PORT, SM_MODEL_DIR, SAGEMAKER_BIND_ALL,
// SAGEMAKER_MULTI_MODEL, SAGEMAKER_BATCH, SAGEMAKER_MAX_PAYLOAD_IN_MB,
// SAGEMAKER_MAX_CONCURRENT_TRANSFORMS, SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT,
// BERTH_MODEL_MEMORY_BUDGET); flags override it. It writes
// "listening on <addr>" to stdout once it accepts connections, and logs to
// stderr.
func Main(ctx context.Context, framework string, args []string, stdout, stderr io.Writer) error {
	return run(ctx, framework, args, os.Getenv, stdout, stderr)
}

func run(ctx context.Context, framework string, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	factory, ok := frameworks[framework]
	if !ok {
		return fmt.Errorf("%w %q (have %s)", ErrUnknownFramework, framework, strings.Join(Frameworks(), ", "))
	}
	cfg, err := modelserver.ConfigFromEnv(getenv)
	if err != nil {
		return fmt.Errorf("model-server: %w", err)
	}
	fs := flag.NewFlagSet("model-server "+framework, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&cfg.Port, "port", cfg.Port, "TCP port (SAGEMAKER_BIND_TO_PORT); 0 picks a free one")
	fs.BoolVar(&cfg.BindAll, "bind-all", cfg.BindAll, "listen on all interfaces, as needed inside a container (SAGEMAKER_BIND_ALL)")
	fs.StringVar(&cfg.ModelDir, "model-dir", cfg.ModelDir, "model directory (SM_MODEL_DIR)")
	fs.BoolVar(&cfg.MultiModel, "multi-model", cfg.MultiModel, "serve the multi-model API only (SAGEMAKER_MULTI_MODEL)")
	fs.Int64Var(&cfg.MemoryBudget, "memory-budget", cfg.MemoryBudget, "bytes of loaded models before loads get 507 (BERTH_MODEL_MEMORY_BUDGET); 0 = unlimited")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("model-server: %w", err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("model-server: log level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	cfg.Logger = log
	fw, err := factory(getenv, log)
	if err != nil {
		return fmt.Errorf("model-server %s: %w", framework, err)
	}
	srv, err := modelserver.New(fw, cfg)
	if err != nil {
		return err
	}
	return srv.Run(ctx, func(a net.Addr) {
		fmt.Fprintf(stdout, "listening on %s\n", a)
	})
}
