package app_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/berth-io/berth/internal/modelserver/builtin"
	"github.com/berth-io/berth/internal/testserver/testserverbin"
)

// TestMain lets the test binary play berth's built-in model servers: the
// app under test starts "<this binary> model-server <framework>" for
// berth/* images, exactly as the berth binary starts itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == "model-server" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		err := builtin.Main(ctx, os.Args[2], os.Args[3:], os.Stdout, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "model-server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(testserverbin.Run(m))
}
