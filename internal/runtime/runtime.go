// Package runtime defines how berth starts, watches and stops model
// instances. A runtime (runtime/process today; Docker and Kubernetes later)
// turns an InstanceSpec into a running server that speaks the SageMaker
// container contract: GET /ping and POST /invocations.
package runtime

import (
	"context"
	"errors"
	"time"
)

// ErrStartup reports that an instance never became healthy. The wrapped
// message says why (health check timed out, process exited with its last
// stderr lines) and is safe to show a user as a FailureReason.
var ErrStartup = errors.New("instance failed to start")

// Image is a resolved container image: what a runtime actually runs.
type Image struct {
	// Name is the image name as the user wrote it in CreateModel.
	Name string
	// Command, when set, runs the image as a local process (the config
	// file's images: catalog and berth's built-in model servers).
	Command []string
	// Env is added to the process environment before the model's own.
	Env map[string]string
	// WorkDir is the process working directory; empty means the
	// instance's own directory.
	WorkDir string
	// Docker is true when the image is run through the Docker Engine.
	Docker bool
}

// InstanceSpec is everything a runtime needs to start one instance.
type InstanceSpec struct {
	// ID names the instance uniquely and durably, for example
	// "my-endpoint/AllTraffic/0". It is used for log and state paths.
	ID string
	// Image is what to run.
	Image Image
	// ModelDir is the unpacked model directory (SM_MODEL_DIR, or
	// /opt/ml/model in a container); empty when the model has none.
	ModelDir string
	// Env is the model's Environment plus any berth variables (batch
	// settings). It never contains berth's own secrets.
	Env map[string]string
	// StartupTimeout bounds the wait for the first successful /ping.
	StartupTimeout time.Duration
}

// Runtime starts instances.
type Runtime interface {
	// Start launches an instance and returns once GET /ping answers 200, or
	// with an error wrapping ErrStartup that says why it did not.
	Start(ctx context.Context, spec InstanceSpec) (Instance, error)
}

// Instance is one running model server. The runtime keeps it alive: a
// crashed process is restarted with backoff, and Healthy is false until it
// answers /ping again.
type Instance interface {
	// ID returns the spec's ID.
	ID() string
	// URL returns the base URL (http://host:port) of the server. It may
	// change after a restart.
	URL() string
	// Healthy reports whether the last health check passed.
	Healthy() bool
	// Restarts counts how many times the instance was restarted.
	Restarts() int
	// Stop sends SIGTERM, waits up to the grace period, then kills, and
	// does not restart the instance again.
	Stop(ctx context.Context) error
}
