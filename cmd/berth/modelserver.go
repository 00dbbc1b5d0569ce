package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/berth-io/berth/internal/modelserver/builtin"
)

// builtinFrameworks lists the model servers compiled into this binary.
func builtinFrameworks() []string { return builtin.Frameworks() }

func newModelServerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "model-server <framework> [flags]",
		Short: "Run a built-in model server speaking the SageMaker container contract",
		Long: "Run a built-in model server (" + joinFrameworks() + ") that speaks the SageMaker container contract:\n" +
			"GET /ping, POST /invocations, on $SAGEMAKER_BIND_TO_PORT, with the model in $SM_MODEL_DIR.\n" +
			"berth starts these itself for the berth/<framework> images.",
		Args:               cobra.MinimumNArgs(1),
		DisableFlagParsing: true, // the framework parses its own flags
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return builtin.Main(ctx, args[0], args[1:], os.Stdout, os.Stderr)
		},
	}
}

func joinFrameworks() string {
	s := ""
	for i, f := range builtin.Frameworks() {
		if i > 0 {
			s += ", "
		}
		s += f
	}
	return s
}
