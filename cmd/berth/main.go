// Command berth is a self-hosted inference platform that speaks the AWS
// SageMaker API. "berth serve" runs the server; "berth model-server
// <framework>" runs one of the built-in model servers (berth starts these
// itself for the berth/* images).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-io/berth/internal/app"
	"github.com/berth-io/berth/internal/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if err := newRootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "berth:", err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "berth",
		Short:         "A self-hosted inference platform that speaks the AWS SageMaker API",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newVersionCommand(), newModelServerCommand())
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print berth's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "berth", version)
		},
	}
}

func newServeCommand() *cobra.Command {
	def := config.Default()
	var listen, dataDir, configFile, logLevel string
	var insecure bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the berth server (SageMaker, SageMaker Runtime and S3 APIs on one port)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w", err)
			}
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			cfg, err := loadServeConfig(configFile, logger)
			if err != nil {
				return err
			}
			// Flags and their environment variables override the file.
			if cmd.Flags().Changed("listen") || os.Getenv("BERTH_LISTEN") != "" || cfg.Listen == "" {
				cfg.Listen = listen
			}
			if cmd.Flags().Changed("data-dir") || os.Getenv("BERTH_DATA_DIR") != "" || cfg.DataDir == "" {
				cfg.DataDir = dataDir
			}
			if err := cfg.Auth.AddEnvCredentials(os.Getenv); err != nil {
				return err
			}
			cfg.Auth.Insecure = insecure
			return serve(cmd.Context(), cfg, logger)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", envOr("BERTH_LISTEN", def.Listen), "address to serve every API on (env BERTH_LISTEN)")
	f.StringVar(&dataDir, "data-dir", envOr("BERTH_DATA_DIR", def.DataDir), "directory for state, objects, artifacts and logs (env BERTH_DATA_DIR)")
	f.StringVar(&configFile, "config", os.Getenv("BERTH_CONFIG"), "optional YAML config file (env BERTH_CONFIG)")
	f.BoolVar(&insecure, "insecure", envBool("BERTH_INSECURE"), "serve without credentials on a non-loopback address, accepting every request (env BERTH_INSECURE)")
	f.StringVar(&logLevel, "log-level", envOr("BERTH_LOG_LEVEL", "info"), "debug, info, warn or error (env BERTH_LOG_LEVEL)")
	return cmd
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

// envBool reads a boolean environment variable ("1", "true", ...).
func envBool(key string) bool {
	b, _ := strconv.ParseBool(os.Getenv(key))
	return b
}

func serve(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.New(ctx, cfg, app.Options{Logger: logger, Frameworks: builtinFrameworks()})
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		a.Shutdown(context.Background())
		return err
	}
	fmt.Fprintf(os.Stderr, "berth %s listening on http://%s (data dir %s)\n", version, a.Addr(), cfg.DataDir)
	waitErr := make(chan error, 1)
	go func() { waitErr <- a.Wait() }()
	select {
	case <-ctx.Done():
	case err := <-waitErr:
		if err != nil {
			return err
		}
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}
