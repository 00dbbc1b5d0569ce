// Package runtimetest is the conformance suite every runtime.Runtime
// passes: start, health, crash and restart, stop, environment, ports,
// multi-container instances, startup failures and what a new runtime does
// with the instances a crashed berth left behind. The model server is
// internal/testserver, run as the runtime runs images (Harness.Image).
package runtimetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/runtime"
	"github.com/berth-io/berth/internal/testutil"
)

// Harness is one runtime under test, with what the suite must know of it.
type Harness struct {
	// Runtime is a fresh runtime for one subtest. The harness closes it
	// when the subtest ends (t.Cleanup); the suite stops its instances.
	Runtime runtime.Runtime
	// Image runs the test server (internal/testserver) in the runtime's
	// image kind. The suite adds TESTSERVER_* variables through each
	// container's Env.
	Image runtime.Image
	// ModelDir returns where a container sees ModelSource.LocalDir (its
	// SM_MODEL_DIR); nil means at the same path.
	ModelDir func(local string) string
	// SharedNetwork is true when containers share berth's network: a
	// container's address has the port it binds (SAGEMAKER_BIND_TO_PORT),
	// and no two containers get the same port.
	SharedNetwork bool
	// Crash simulates berth dying: supervision of every instance of
	// Runtime ends and nothing is stopped. It returns a new runtime over
	// the same state, which the suite recovers (and the harness closes).
	Crash func(t *testing.T) runtime.Runtime
	// Adopts is true when Recover takes over what a crashed berth left
	// running; otherwise it must stop and remove it.
	Adopts bool
	// Leftovers lists what is left of instances that are gone (processes,
	// containers, pid files), for the suite to require none; nil skips
	// that check.
	Leftovers func() []string
}

// Run runs the suite; newHarness returns a fresh Harness for one subtest.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h Harness)
	}{
		{"Start", testStart},
		{"Health", testHealth},
		{"CrashRestart", testCrashRestart},
		{"Stop", testStop},
		{"Environment", testEnvironment},
		{"Ports", testPorts},
		{"MultiContainer", testMultiContainer},
		{"StartupFailure", testStartupFailure},
		{"Recover", testRecover},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newHarness(t))
		})
	}
}

// container returns a container spec that runs the test server with env.
func (h Harness) container(name string, env map[string]string) runtime.ContainerSpec {
	img := h.Image
	img.Command = slices.Clone(img.Command)
	return runtime.ContainerSpec{Name: name, Image: img, Env: env}
}

// spec returns an instance spec of containers.
func spec(id string, containers ...runtime.ContainerSpec) runtime.InstanceSpec {
	return runtime.InstanceSpec{ID: id, Containers: containers, StartupTimeout: 10 * time.Second}
}

// start starts spec on r and stops the instance when the test ends.
func start(t *testing.T, r runtime.Runtime, s runtime.InstanceSpec) runtime.Instance {
	t.Helper()
	in, err := r.Start(t.Context(), s)
	if err != nil {
		t.Fatalf("start %s: %v", s.ID, err)
	}
	t.Cleanup(func() { stop(t, in) })
	return in
}

func stop(t *testing.T, in runtime.Instance) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := in.Stop(ctx); err != nil {
		t.Errorf("stop %s: %v", in.ID(), err)
	}
}

// client has no keep-alives: a stopped server's address must be dialled
// afresh to tell whether it still answers.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}, Timeout: 10 * time.Second}

// invoke POSTs body to base's /invocations and returns the answer and
// the server's pid (X-Testserver-Instance).
func invoke(t *testing.T, base, body string) (string, string) {
	t.Helper()
	resp, err := client.Post(base+"/invocations", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatalf("invoke %s: %v", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("invoke %s: %s %q %v", base, resp.Status, b, err)
	}
	return string(b), resp.Header.Get("X-Testserver-Instance")
}

// ping reports whether base answers GET /ping with 200.
func ping(base string) error {
	c := http.Client{Transport: client.Transport, Timeout: time.Second}
	resp, err := c.Get(base + "/ping")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /ping: %s", resp.Status)
	}
	return nil
}

// poke POSTs to url and ignores the outcome (POST /crash never answers).
func poke(url string) {
	if resp, err := client.Post(url, "text/plain", nil); err == nil {
		resp.Body.Close()
	}
}

// serverEnv returns the environment a server in "env" mode reports.
func serverEnv(t *testing.T, base string) map[string]string {
	t.Helper()
	body, _ := invoke(t, base, "")
	var env map[string]string
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("decode env: %v (%q)", err, body)
	}
	return env
}

// addrs returns the address of every container of in.
func addrs(in runtime.Instance) []string {
	var out []string
	for _, name := range in.Containers() {
		out = append(out, in.Addr(name))
	}
	return out
}

// requireGone checks that nothing answers at the addresses any more and
// that the runtime left nothing behind.
func requireGone(t *testing.T, h Harness, bases []string) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, func() error {
		for _, b := range bases {
			if err := ping(b); err == nil {
				return fmt.Errorf("%s still answers", b)
			}
		}
		return nil
	})
	if h.Leftovers != nil {
		if left := h.Leftovers(); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	}
}

func testStart(t *testing.T, h Harness) {
	// The server answers /ping only after a delay: Start must wait for it.
	const delay = 300 * time.Millisecond
	begin := time.Now()
	in := start(t, h.Runtime, spec("start/0", h.container(runtime.PrimaryContainer, map[string]string{
		"TESTSERVER_PING_DELAY": delay.String(), "TESTSERVER_MODE": "upper",
	})))
	if took := time.Since(begin); took < delay {
		t.Errorf("Start returned after %s, before the server could answer /ping (%s)", took, delay)
	}
	if err := ping(in.URL()); err != nil {
		t.Errorf("right after Start: %v", err)
	}
	if !in.Healthy() || in.Restarts() != 0 || in.ID() != "start/0" {
		t.Errorf("id=%q healthy=%v restarts=%d, want start/0 true 0", in.ID(), in.Healthy(), in.Restarts())
	}
	if got := in.Containers(); !slices.Equal(got, []string{runtime.PrimaryContainer}) {
		t.Errorf("Containers() = %q", got)
	}
	if in.Addr(runtime.PrimaryContainer) != in.URL() || in.Addr("other") != "" {
		t.Errorf("Addr(primary) = %q, Addr(other) = %q; URL %q", in.Addr(runtime.PrimaryContainer), in.Addr("other"), in.URL())
	}
	if body, _ := invoke(t, in.URL(), "hello"); body != "HELLO" {
		t.Errorf("invoke = %q, want HELLO", body)
	}
}

func testHealth(t *testing.T, h Harness) {
	model := t.TempDir()
	c := h.container(runtime.PrimaryContainer, map[string]string{"TESTSERVER_FAIL_START_MARKER": "broken"})
	c.Model.LocalDir = model
	in := start(t, h.Runtime, spec("health/0", c))
	// From now on restarts fail, so the instance stays unhealthy.
	marker := filepath.Join(model, "broken")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	poke(in.URL() + "/unhealthy")
	testutil.WaitFor(t, 10*time.Second, func() error {
		if in.Healthy() || in.Restarts() < 2 {
			return fmt.Errorf("healthy=%v restarts=%d after its server failed pings and its restarts failed", in.Healthy(), in.Restarts())
		}
		return nil
	})
	if in.Healthy() {
		t.Error("healthy while every restart fails")
	}
	if err := os.Remove(marker); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if !in.Healthy() {
			return errors.New("not healthy again once restarts succeed")
		}
		return ping(in.URL())
	})
}

func testCrashRestart(t *testing.T, h Harness) {
	in := start(t, h.Runtime, spec("crash/0", h.container(runtime.PrimaryContainer, nil)))
	first := in.URL()
	_, pid := invoke(t, first, "before")
	poke(first + "/crash")
	testutil.WaitFor(t, 10*time.Second, func() error {
		if in.Restarts() != 1 || !in.Healthy() {
			return fmt.Errorf("restarts=%d healthy=%v", in.Restarts(), in.Healthy())
		}
		return nil
	})
	body, pid2 := invoke(t, in.URL(), "again")
	if body != "again" {
		t.Errorf("invoke after restart = %q", body)
	}
	if h.SharedNetwork && pid2 == pid {
		t.Errorf("server pid %s unchanged after a crash", pid)
	}
	if in.URL() != first {
		if err := ping(first); err == nil {
			t.Errorf("the crashed server's address %s still answers", first)
		}
	}
}

func testStop(t *testing.T, h Harness) {
	s := spec("stop/0", h.container("a", nil), h.container("b", nil))
	in, err := h.Runtime.Start(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	bases := addrs(in)
	if err := in.Stop(t.Context()); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if in.Healthy() {
		t.Error("healthy after Stop")
	}
	requireGone(t, h, bases)
	if err := in.Stop(t.Context()); err != nil {
		t.Errorf("second stop: %v", err)
	}
	// The ID is free again.
	again := start(t, h.Runtime, s)
	if err := ping(again.URL()); err != nil {
		t.Error(err)
	}
}

func testEnvironment(t *testing.T, h Harness) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
	t.Setenv("BERTH_CONFORMANCE_SECRET", "s3cr3t")
	envDir, modelDir := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(modelDir, "model.txt"), []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	envC := h.container("env", map[string]string{"TESTSERVER_MODE": "env", "MODEL_KNOB": "model"})
	envC.Image.Env = map[string]string{"WORKERS": "2", "MODEL_KNOB": "image"}
	envC.Model = runtime.ModelSource{LocalDir: envDir, URI: "s3://bucket/env/model.tar.gz"}
	modelC := h.container("model", map[string]string{"TESTSERVER_MODE": "model-file"})
	modelC.Model.LocalDir = modelDir
	in := start(t, h.Runtime, spec("env/0", envC, modelC))

	env := serverEnv(t, in.Addr("env"))
	seen := envDir
	if h.ModelDir != nil {
		seen = h.ModelDir(envDir)
	}
	want := map[string]string{
		"SM_MODEL_DIR":    seen,
		"WORKERS":         "2",
		"MODEL_KNOB":      "model", // the model's Environment beats the image's
		"TESTSERVER_MODE": "env",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if _, err := strconv.Atoi(env["SAGEMAKER_BIND_TO_PORT"]); err != nil {
		t.Errorf("SAGEMAKER_BIND_TO_PORT = %q", env["SAGEMAKER_BIND_TO_PORT"])
	}
	if _, _, err := safeRange(env); err != nil {
		t.Error(err)
	}
	for k, v := range env {
		if strings.HasPrefix(k, "BERTH_") || strings.HasPrefix(k, "AWS_") || strings.Contains(v, "s3cr3t") {
			t.Errorf("berth's own variable %s=%q reached the server", k, v)
		}
	}
	if body, _ := invoke(t, in.Addr("model"), ""); body != "weights" {
		t.Errorf("the second container read %q from its model, want weights", body)
	}
}

// safeRange parses SAGEMAKER_SAFE_PORT_RANGE.
func safeRange(env map[string]string) (lo, hi int, err error) {
	s := env["SAGEMAKER_SAFE_PORT_RANGE"]
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("SAGEMAKER_SAFE_PORT_RANGE = %q, want lo-hi", s)
	}
	return lo, hi, nil
}

func testPorts(t *testing.T, h Harness) {
	envOnly := map[string]string{"TESTSERVER_MODE": "env"}
	ins := []runtime.Instance{
		start(t, h.Runtime, spec("ports/0", h.container("a", envOnly), h.container("b", envOnly), h.container("c", envOnly))),
		start(t, h.Runtime, spec("ports/1", h.container(runtime.PrimaryContainer, envOnly))),
	}
	type block struct {
		where            string
		bind, safeLo, hi int
	}
	var blocks []block
	addrSeen := map[string]bool{}
	for _, in := range ins {
		for _, name := range in.Containers() {
			where := in.ID() + "/" + name
			base := in.Addr(name)
			if addrSeen[base] {
				t.Errorf("%s: address %s given twice", where, base)
			}
			addrSeen[base] = true
			env := serverEnv(t, base)
			bind, err := strconv.Atoi(env["SAGEMAKER_BIND_TO_PORT"])
			if err != nil {
				t.Fatalf("%s: SAGEMAKER_BIND_TO_PORT = %q", where, env["SAGEMAKER_BIND_TO_PORT"])
			}
			lo, hi, err := safeRange(env)
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			if bind >= lo && bind <= hi {
				t.Errorf("%s: bind port %d inside its own safe range %d-%d", where, bind, lo, hi)
			}
			if h.SharedNetwork {
				u, err := url.Parse(base)
				if err != nil || u.Port() != strconv.Itoa(bind) {
					t.Errorf("%s: address %s, but the server binds port %d", where, base, bind)
				}
			}
			blocks = append(blocks, block{where, bind, lo, hi})
		}
	}
	if !h.SharedNetwork {
		return
	}
	in := func(p int, b block) bool { return p == b.bind || p >= b.safeLo && p <= b.hi }
	for i, a := range blocks {
		for _, b := range blocks[i+1:] {
			if in(a.bind, b) || in(b.bind, a) || in(a.safeLo, b) || in(b.safeLo, a) {
				t.Errorf("ports of %s (%d, %d-%d) and %s (%d, %d-%d) overlap", a.where, a.bind, a.safeLo, a.hi, b.where, b.bind, b.safeLo, b.hi)
			}
		}
	}
}

func testMultiContainer(t *testing.T, h Harness) {
	in := start(t, h.Runtime, spec("multi/0",
		h.container("first", nil),
		h.container("second", map[string]string{"TESTSERVER_MODE": "upper"}),
		h.container("third", nil),
	))
	if got := in.Containers(); !slices.Equal(got, []string{"first", "second", "third"}) {
		t.Errorf("Containers() = %q", got)
	}
	if in.URL() != in.Addr("first") {
		t.Errorf("URL %q is not the first container's address %q", in.URL(), in.Addr("first"))
	}
	pids := map[string]string{}
	for _, name := range in.Containers() {
		body, pid := invoke(t, in.Addr(name), "hi "+name)
		want := "hi " + name
		if name == "second" {
			want = strings.ToUpper(want)
		}
		if body != want {
			t.Errorf("%s answered %q, want %q", name, body, want)
		}
		pids[name] = pid
	}

	// A crashed container is restarted alone.
	third := in.Addr("third")
	poke(in.Addr("second") + "/crash")
	testutil.WaitFor(t, 10*time.Second, func() error {
		if in.Restarts() != 1 || !in.Healthy() {
			return fmt.Errorf("restarts=%d healthy=%v", in.Restarts(), in.Healthy())
		}
		return nil
	})
	if body, _ := invoke(t, in.Addr("second"), "back"); body != "BACK" {
		t.Errorf("restarted container answered %q", body)
	}
	for _, name := range []string{"first", "third"} {
		if _, pid := invoke(t, in.Addr(name), "x"); pid != pids[name] {
			t.Errorf("container %s was restarted (pid %s, was %s) when its sibling crashed", name, pid, pids[name])
		}
	}
	if in.Addr("third") != third {
		t.Errorf("third container moved from %s to %s", third, in.Addr("third"))
	}

	bases := addrs(in)
	stop(t, in)
	requireGone(t, h, bases)
}

func testStartupFailure(t *testing.T, h Harness) {
	tests := []struct {
		name    string
		spec    runtime.InstanceSpec
		want    []string
		within  time.Duration
		timeout time.Duration
	}{
		{
			name:    "exits at once",
			spec:    spec("fail/exit", h.container(runtime.PrimaryContainer, map[string]string{"TESTSERVER_FAIL_START": "1"})),
			timeout: 30 * time.Second,
			want:    []string{"boom: bad model"},
			within:  5 * time.Second,
		},
		{
			name:    "never healthy",
			spec:    spec("fail/ping", h.container(runtime.PrimaryContainer, map[string]string{"TESTSERVER_PING_DELAY": "1h"})),
			timeout: 300 * time.Millisecond,
			want:    []string{"did not pass within 300ms", "503"},
			within:  5 * time.Second,
		},
		{
			name: "one container of three",
			spec: spec("fail/multi",
				h.container("good", nil),
				h.container("bad", map[string]string{"TESTSERVER_FAIL_START": "1"}),
				h.container("slow", map[string]string{"TESTSERVER_PING_DELAY": "1h"}),
			),
			timeout: 30 * time.Second,
			want:    []string{"container bad", "boom: bad model"},
			within:  5 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.spec.StartupTimeout = tt.timeout
			begin := time.Now()
			in, err := h.Runtime.Start(t.Context(), tt.spec)
			took := time.Since(begin)
			if err == nil {
				stop(t, in)
				t.Fatal("start succeeded, want an error")
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, runtime.ErrStartup) {
				t.Errorf("error %v does not wrap ErrStartup", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if took > tt.within {
				t.Errorf("start took %s to fail, want under %s", took, tt.within)
			}
			requireGone(t, h, nil)
			// Nothing of the failed instance holds its ID.
			again := spec(tt.spec.ID, h.container(runtime.PrimaryContainer, nil))
			start(t, h.Runtime, again)
		})
	}
}

func testRecover(t *testing.T, h Harness) {
	if h.Crash == nil {
		t.Skip("the harness cannot simulate a crash")
	}
	in := start(t, h.Runtime, spec("recover/0", h.container("a", nil), h.container("b", nil)))
	bases := addrs(in)
	next := h.Crash(t)
	adopted, cleaned, err := next.Recover(t.Context())
	if err != nil {
		t.Fatalf("recover: %v", err)
	}
	if !h.Adopts {
		if len(adopted) != 0 || cleaned < 1 {
			t.Fatalf("recover adopted %d, cleaned %d; want 0 and at least 1", len(adopted), cleaned)
		}
		requireGone(t, h, bases)
	} else {
		if len(adopted) != 1 || adopted[0].ID() != "recover/0" {
			t.Fatalf("recover adopted %d instances, want recover/0", len(adopted))
		}
		got := adopted[0]
		if !slices.Equal(got.Containers(), []string{"a", "b"}) {
			t.Errorf("adopted containers %q, want a b", got.Containers())
		}
		for _, name := range got.Containers() {
			if err := ping(got.Addr(name)); err != nil {
				t.Errorf("adopted container %s: %v", name, err)
			}
		}
		bases = addrs(got)
		stop(t, got)
		requireGone(t, h, bases)
	}
	// The new runtime runs instances as usual, the same ID included.
	again := start(t, next, spec("recover/0", h.container(runtime.PrimaryContainer, nil)))
	if err := ping(again.URL()); err != nil {
		t.Error(err)
	}
}
