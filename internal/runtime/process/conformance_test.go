//go:build linux

package process

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/runtime"
	"github.com/berth-io/berth/internal/runtime/runtimetest"
	"github.com/berth-io/berth/internal/testserver/testserverbin"
)

func TestConformance(t *testing.T) {
	runtimetest.Run(t, func(t *testing.T) runtimetest.Harness {
		opts := fastOptions()
		opts.StateDir = t.TempDir()
		r := newRuntime(t, opts)
		return runtimetest.Harness{
			Runtime:       r,
			Image:         runtime.Image{Name: "testserver:latest", Kind: runtime.KindProcess, Command: []string{testserverbin.Build(t)}},
			SharedNetwork: true,
			Crash: func(t *testing.T) runtime.Runtime {
				r.crash()
				return newRuntime(t, opts)
			},
			Leftovers: func() []string {
				left, _ := filepath.Glob(filepath.Join(opts.StateDir, "*", pidFileName))
				return left
			},
		}
	})
}

// crash ends the supervision of every instance of r, as if berth had died,
// and leaves their processes running: the forker thread, whose end would
// kill them, lives on until Close.
func (r *Runtime) crash() {
	r.mu.Lock()
	var all []*Instance
	for _, in := range r.instances {
		all = append(all, in)
	}
	r.mu.Unlock()
	for _, in := range all {
		in.Detach()
	}
}

// TestMux: the Mux hands process images to the process runtime and
// refuses a kind nobody runs, naming the image.
func TestMux(t *testing.T) {
	mux := runtime.NewMux()
	mux.Register(runtime.KindProcess, newRuntime(t, fastOptions()))
	spec := testSpec(t, "mux/0", nil)
	spec.Containers[0].Model.LocalDir = t.TempDir()
	in, err := mux.Start(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	if got := mux.ModelDirs(); len(got) != 1 || got[0] != spec.Containers[0].Model.LocalDir {
		t.Errorf("ModelDirs = %q, want the instance's model dir", got)
	}
	if err := in.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}

	docker := testSpec(t, "mux/1", nil)
	docker.Containers[0].Image = runtime.Image{Name: "123.dkr.ecr.us-east-1.amazonaws.com/x:1", Kind: runtime.KindDocker, Ref: "123.dkr.ecr.us-east-1.amazonaws.com/x:1"}
	_, err = mux.Start(t.Context(), docker)
	if !errors.Is(err, runtime.ErrUnknownKind) {
		t.Fatalf("start of a docker image: %v, want ErrUnknownKind", err)
	}
	for _, want := range []string{"123.dkr.ecr.us-east-1.amazonaws.com/x:1", `"docker"`, "process"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if adopted, cleaned, err := mux.Recover(ctx); len(adopted) != 0 || cleaned != 0 || err != nil {
		t.Errorf("recover = %d, %d, %v; want nothing", len(adopted), cleaned, err)
	}
}

// TestContainerDirs: every container of an instance has a directory of
// its own right under the state dir, with its logs and pid file; the
// first keeps the instance's directory name.
func TestContainerDirs(t *testing.T) {
	r := newRuntime(t, fastOptions())
	spec := testSpec(t, "dirs/0", nil)
	second := spec.Containers[0]
	second.Name = "second"
	spec.Containers = append(spec.Containers, second)
	in := startInstance(t, r, spec)

	dirs := map[string]string{
		runtime.PrimaryContainer: filepath.Join(r.opts.StateDir, instanceDirName("dirs/0")),
		"second":                 filepath.Join(r.opts.StateDir, containerDirName("dirs/0", "second", 1)),
	}
	if in.Dir() != dirs[runtime.PrimaryContainer] || dirs["second"] == in.Dir() {
		t.Fatalf("dirs %q, primary dir %s", dirs, in.Dir())
	}
	for name, dir := range dirs {
		pid := in.ContainerPID(name)
		rec, err := readPIDFile(filepath.Join(dir, pidFileName))
		if err != nil || rec.pid != pid {
			t.Errorf("container %s: pid file %+v, %v; want pid %d", name, rec, err, pid)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "stdout.log")); err != nil || !strings.Contains(string(b), "listening") {
			t.Errorf("container %s: stdout.log %q, %v", name, b, err)
		}
	}
	if in.ContainerPID("second") == in.PID() {
		t.Error("both containers report one process")
	}
	if err := in.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	for name, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, pidFileName)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("container %s: pid file left after Stop: %v", name, err)
		}
	}
}
