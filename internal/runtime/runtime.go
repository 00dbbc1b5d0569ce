// Package runtime defines how berth starts, watches and stops model
// instances. A runtime turns an InstanceSpec — one or more containers, each
// with its image and model — into running servers that speak the SageMaker
// container contract (GET /ping, POST /invocations), keeps them alive, and
// stops them.
//
// The pieces:
//
//   - Runtime and Instance are the contract the control plane uses.
//   - Mux is a Runtime that hands each InstanceSpec to the runtime
//     registered for its image kind (KindProcess, KindDocker, ...).
//   - Supervisor does what every runtime needs around its containers:
//     startup readiness polling, liveness checks, restart with backoff,
//     stop with a grace period. A runtime implements ContainerDriver and
//     ContainerRun (start one container once, signal it, report its exit
//     and address) and gets an Instance back.
//   - runtime/runtimetest is the conformance suite every runtime passes.
//
// Adding a runtime (Docker, Kubernetes):
//
//  1. Implement Runtime. Start validates the spec (InstanceSpec.Validate),
//     builds one ContainerDriver per container and hands them to
//     Supervisor.New, then starts the result; Recover adopts what a
//     previous berth left running (by label, say) or removes it; Close
//     stops (or, for containers that outlive berth, detaches) every
//     instance.
//  2. Give containers the contract environment (ContractEnv) and the
//     model: ModelSource.LocalDir mounted where SM_MODEL_DIR says, or
//     fetched from ModelSource.URI by a runtime on another host.
//  3. Register it in app's Mux under its ImageKind, and have the image
//     catalog resolve images to that kind.
//  4. Run runtimetest.Run against it from the runtime's own tests.
//
// Containers of one instance start together and stop together. One that
// exits or fails its health checks is restarted alone, with backoff; the
// instance is unhealthy while any of its containers is.
package runtime

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// ErrStartup reports that an instance never became healthy. The wrapped
// message says why (health check timed out, process exited with its last
// stderr lines) and is safe to show a user as a FailureReason.
var ErrStartup = errors.New("instance failed to start")

// ErrUnknownKind reports an image kind that no registered runtime runs.
var ErrUnknownKind = errors.New("no runtime for the image kind")

// ImageKind says which runtime runs an image.
type ImageKind string

const (
	// KindProcess images are a command run as a local process (the config
	// file's images: catalog and berth's built-in model servers).
	KindProcess ImageKind = "process"
	// KindDocker images are run through the Docker Engine.
	KindDocker ImageKind = "docker"
)

// Image is a resolved container image: what a runtime actually runs.
type Image struct {
	// Name is the image name as the user wrote it in CreateModel.
	Name string
	// Kind selects the runtime.
	Kind ImageKind
	// Command is what a KindProcess image runs.
	Command []string
	// Ref is the image reference a container runtime pulls and runs
	// (KindDocker); empty for a KindProcess image.
	Ref string
	// Env is added to the container environment before the model's own.
	Env map[string]string
	// WorkDir is the working directory; empty means the runtime's default.
	WorkDir string
}

// ModelSource is where a container's model comes from.
type ModelSource struct {
	// LocalDir is the unpacked model directory on berth's host; empty
	// when the container has no model. A runtime on this host mounts or
	// passes it as SM_MODEL_DIR.
	LocalDir string
	// URI is the ModelDataUrl as the user gave it (s3://, https://,
	// file://), for a runtime that fetches the model where it runs.
	URI string
}

// PrimaryContainer is the container name of a single-container instance.
const PrimaryContainer = "primary"

// MaxContainers is the most containers one instance may have (SageMaker's
// limit for an inference pipeline or a direct-invocation endpoint).
const MaxContainers = 15

// ContainerSpec is one container of an instance. The runtime assigns its
// ports (SAGEMAKER_BIND_TO_PORT and SAGEMAKER_SAFE_PORT_RANGE) and reports
// its address through Instance.Addr.
type ContainerSpec struct {
	// Name identifies the container within its instance, and is its
	// hostname where containers have one (SageMaker's
	// ContainerHostname). A DNS label: letters, digits and inner '-'.
	Name string
	// Image is what to run.
	Image Image
	// Env is the model's Environment plus any berth variables (batch
	// settings). It never contains berth's own secrets.
	Env map[string]string
	// Model is the container's model data.
	Model ModelSource
}

// InstanceSpec is everything a runtime needs to start one instance.
type InstanceSpec struct {
	// ID names the instance uniquely and durably, for example
	// "my-endpoint/AllTraffic/0". It is used for log and state paths.
	ID string
	// Containers run together; the first is the primary, whose address
	// is the instance's URL. Every container has the same image kind.
	Containers []ContainerSpec
	// StartupTimeout bounds the wait for every container's first
	// successful /ping; zero means the runtime's default.
	StartupTimeout time.Duration
}

var containerName = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// Validate reports the first reason spec cannot be started.
func (s *InstanceSpec) Validate() error {
	switch n := len(s.Containers); {
	case s.ID == "":
		return errors.New("instance spec: empty id")
	case strings.ContainsRune(s.ID, 0):
		return fmt.Errorf("instance spec: id %q holds a NUL", s.ID)
	case n == 0:
		return fmt.Errorf("instance %s: no containers", s.ID)
	case n > MaxContainers:
		return fmt.Errorf("instance %s: %d containers, at most %d allowed", s.ID, n, MaxContainers)
	case s.StartupTimeout < 0:
		return fmt.Errorf("instance %s: negative startup timeout", s.ID)
	}
	seen := make(map[string]bool, len(s.Containers))
	for _, c := range s.Containers {
		if !containerName.MatchString(c.Name) {
			return fmt.Errorf("instance %s: container name %q is not a DNS label", s.ID, c.Name)
		}
		if seen[c.Name] {
			return fmt.Errorf("instance %s: container name %q used twice", s.ID, c.Name)
		}
		seen[c.Name] = true
		if c.Image.Kind != s.Containers[0].Image.Kind {
			return fmt.Errorf("instance %s: containers of image kinds %q and %q cannot run together", s.ID, s.Containers[0].Image.Kind, c.Image.Kind)
		}
	}
	return nil
}

// Kind returns the image kind of the spec's containers ("" with none).
func (s *InstanceSpec) Kind() ImageKind {
	if len(s.Containers) == 0 {
		return ""
	}
	return s.Containers[0].Image.Kind
}

// Runtime starts instances and finds those a previous berth left behind.
type Runtime interface {
	// Start launches an instance and returns once every container answers
	// GET /ping with 200, or with an error wrapping ErrStartup that says
	// why it did not. The instance lives until Stop or Close, whatever
	// becomes of ctx; cancelling ctx abandons an instance still starting.
	Start(ctx context.Context, spec InstanceSpec) (Instance, error)
	// Recover deals with instances a previous berth left over the same
	// state: those the runtime can take charge of again are returned
	// (running and supervised; the caller keeps or stops them), the rest
	// are stopped and removed, and counted in cleaned. Call it once, at
	// start-up, before Start.
	Recover(ctx context.Context) (adopted []Instance, cleaned int, err error)
	// Close stops every instance the runtime supervises, or leaves them
	// for the next berth's Recover where the runtime can adopt them, and
	// releases the runtime. Start fails afterwards.
	Close(ctx context.Context) error
}

// Instance is one running instance. The runtime keeps it alive: a crashed
// container is restarted with backoff, and Healthy is false until it
// answers /ping again.
type Instance interface {
	// ID returns the spec's ID.
	ID() string
	// URL returns the base URL (http://host:port) of the primary
	// container. It may change after a restart.
	URL() string
	// Containers returns the container names, in spec order.
	Containers() []string
	// Addr returns the base URL of the named container, or "" if the
	// instance has no such container. It may change after a restart.
	Addr(name string) string
	// Healthy reports whether every container passed its last checks.
	Healthy() bool
	// Restarts counts the container restarts of the instance.
	Restarts() int
	// Stop terminates every container (SIGTERM or the runtime's like),
	// waits up to the grace period, then kills, and does not restart
	// them again. It may be called more than once.
	Stop(ctx context.Context) error
}

// ModelDirer is implemented by runtimes that can list the local model
// directories their instances use, which the artifact cache must keep.
type ModelDirer interface {
	ModelDirs() []string
}
