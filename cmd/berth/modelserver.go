package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// builtinFrameworks lists the model servers compiled into this binary.
func builtinFrameworks() []string { return nil }

func newModelServerCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "model-server <framework>",
		Short: "Run a built-in model server speaking the SageMaker container contract",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return fmt.Errorf("no built-in model server named %q in this build", args[0])
		},
	}
}
