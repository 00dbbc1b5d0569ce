//go:build linux

package process

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/runtime"
	"github.com/berth-io/berth/internal/testserver/testserverbin"
	"github.com/berth-io/berth/internal/testutil"
)

// The parent-death test re-executes this test binary as a fake berth that
// starts one instance, prints its pid and waits to be killed.
const fakeParentEnv = "PROCESS_TEST_FAKE_PARENT"

func TestMain(m *testing.M) {
	if bin := os.Getenv(fakeParentEnv); bin != "" {
		os.Exit(fakeParent(bin, os.Getenv("PROCESS_TEST_STATE_DIR")))
	}
	os.Exit(testserverbin.Run(m))
}

// fakeParent runs bin, or with PROCESS_TEST_SCRIPT set the shell script
// "sh -c <script> <bin>", without a watchdog if PROCESS_TEST_NO_WATCHDOG
// is set.
func fakeParent(bin, stateDir string) int {
	rt, err := New(Options{StateDir: stateDir, NoWatchdog: os.Getenv("PROCESS_TEST_NO_WATCHDOG") != ""})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx := context.Background()
	command := []string{bin}
	if script := os.Getenv("PROCESS_TEST_SCRIPT"); script != "" {
		command = []string{"/bin/sh", "-c", script, bin}
	}
	in, err := rt.Start(ctx, runtime.InstanceSpec{
		ID:             "orphan",
		Containers:     []runtime.ContainerSpec{{Name: runtime.PrimaryContainer, Image: runtime.Image{Kind: runtime.KindProcess, Command: command}}},
		StartupTimeout: 10 * time.Second,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("pid %d\n", in.(*Instance).PID())
	io.Copy(io.Discard, os.Stdin) // until the test kills us or closes stdin
	rt.Close(ctx)
	return 0
}

// fastOptions are options for tests: quick health checks and restarts.
func fastOptions() Options {
	return Options{
		HealthInterval:    50 * time.Millisecond,
		PingTimeout:       time.Second,
		ReadyPollInterval: 20 * time.Millisecond,
		BackoffMin:        10 * time.Millisecond,
		BackoffMax:        100 * time.Millisecond,
		StopGrace:         5 * time.Second,
	}
}

func newRuntime(t *testing.T, opts Options) *Runtime {
	t.Helper()
	if opts.StateDir == "" {
		opts.StateDir = t.TempDir()
	}
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return r
}

func testSpec(t *testing.T, id string, env map[string]string) runtime.InstanceSpec {
	t.Helper()
	return runtime.InstanceSpec{
		ID: id,
		Containers: []runtime.ContainerSpec{{
			Name:  runtime.PrimaryContainer,
			Image: runtime.Image{Name: "testserver:latest", Kind: runtime.KindProcess, Command: []string{testserverbin.Build(t)}},
			Env:   env,
		}},
		StartupTimeout: 10 * time.Second,
	}
}

func startInstance(t *testing.T, r *Runtime, spec runtime.InstanceSpec) *Instance {
	t.Helper()
	in, err := r.Start(t.Context(), spec)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	return in.(*Instance)
}

// client has no keep-alives, so tests leave no idle connection goroutines.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

func post(t *testing.T, base, path, contentType, body string) (*http.Response, string) {
	t.Helper()
	resp, err := client.Post(base+path, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return resp, string(b)
}

// poke POSTs to url and ignores the outcome (POST /crash never answers).
func poke(url string) {
	if resp, err := client.Post(url, "text/plain", nil); err == nil {
		resp.Body.Close()
	}
}

// alive reports whether pid runs (exists and is not a zombie).
func alive(pid int) bool {
	_, zombie, err := procStartTime(pid)
	return err == nil && !zombie
}

func TestStartAndInvoke(t *testing.T) {
	modelDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(modelDir, "model.txt"), []byte("weights"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newRuntime(t, fastOptions())
	tests := []struct {
		name, mode, body, want string
	}{
		{"echo", "echo", `{"x":1}`, `{"x":1}`},
		{"upper", "upper", "hello", "HELLO"},
		{"model file", "model-file", "ignored", "weights"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := testSpec(t, "ep/AllTraffic/"+tt.mode, map[string]string{"TESTSERVER_MODE": tt.mode})
			spec.Containers[0].Model.LocalDir = modelDir
			in := startInstance(t, r, spec)
			defer in.Stop(t.Context())
			if !in.Healthy() || in.Restarts() != 0 {
				t.Errorf("healthy=%v restarts=%d, want true 0", in.Healthy(), in.Restarts())
			}
			resp, got := post(t, in.URL(), "/invocations", "application/json", tt.body)
			if resp.StatusCode != http.StatusOK || got != tt.want {
				t.Errorf("invoke = %d %q, want 200 %q", resp.StatusCode, got, tt.want)
			}
			if pid := resp.Header.Get("X-Testserver-Instance"); pid != strconv.Itoa(in.PID()) {
				t.Errorf("X-Testserver-Instance = %q, want %d", pid, in.PID())
			}
			if !strings.HasPrefix(in.Dir(), r.opts.StateDir+string(filepath.Separator)) {
				t.Errorf("instance dir %s not under state dir %s", in.Dir(), r.opts.StateDir)
			}
			out, err := os.ReadFile(filepath.Join(in.Dir(), "stdout.log"))
			if err != nil || !bytes.Contains(out, []byte("listening")) {
				t.Errorf("stdout.log = %q, %v; want the server's start line", out, err)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
	t.Setenv("BERTH_DATA_DIR", "/secret/place")
	r := newRuntime(t, fastOptions())
	spec := testSpec(t, "env", map[string]string{"TESTSERVER_MODE": "env", "MODEL_KNOB": "model"})
	spec.Containers[0].Image.Env = map[string]string{"WORKERS": "2", "MODEL_KNOB": "image"}
	spec.Containers[0].Model.LocalDir = "/models/m1"
	in := startInstance(t, r, spec)

	_, body := post(t, in.URL(), "/invocations", "text/plain", "")
	var env map[string]string
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		t.Fatalf("decode env: %v (%q)", err, body)
	}
	u, err := url.Parse(in.URL())
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(u.Port())
	want := map[string]string{
		"SAGEMAKER_BIND_TO_PORT":    u.Port(),
		"SAGEMAKER_SAFE_PORT_RANGE": fmt.Sprintf("%d-%d", port+1, port+10),
		"SM_MODEL_DIR":              "/models/m1",
		"WORKERS":                   "2",
		"MODEL_KNOB":                "model", // the model's Environment beats the image's
		"TESTSERVER_MODE":           "env",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	for k := range env {
		_, expected := want[k]
		switch k {
		case "PATH", "HOME", "LANG", "TMPDIR", "TZ":
		default:
			if !expected {
				t.Errorf("unexpected variable %s=%q reached the model process", k, env[k])
			}
		}
	}
	if strings.Contains(body, "s3cr3t") {
		t.Error("berth's secret reached the model process")
	}
}

func TestStartupFailure(t *testing.T) {
	r := newRuntime(t, fastOptions())
	tests := []struct {
		name    string
		spec    func(runtime.InstanceSpec) runtime.InstanceSpec
		startup bool // wraps runtime.ErrStartup
		want    []string
		within  time.Duration // must fail this fast
	}{
		{
			name: "exits at once",
			spec: func(s runtime.InstanceSpec) runtime.InstanceSpec {
				s.Containers[0].Env = map[string]string{"TESTSERVER_FAIL_START": "1"}
				s.StartupTimeout = 30 * time.Second
				return s
			},
			startup: true,
			want:    []string{"process exited with status 3", "last stderr lines: boom: bad model"},
			within:  5 * time.Second,
		},
		{
			name: "ping never passes",
			spec: func(s runtime.InstanceSpec) runtime.InstanceSpec {
				s.Containers[0].Env = map[string]string{"TESTSERVER_PING_DELAY": "1h"}
				s.StartupTimeout = 300 * time.Millisecond
				return s
			},
			startup: true,
			want:    []string{"health check did not pass within 300ms (last error: GET /ping answered 503"},
			within:  5 * time.Second,
		},
		{
			name: "missing command",
			spec: func(s runtime.InstanceSpec) runtime.InstanceSpec {
				s.Containers[0].Image.Command = []string{filepath.Join(t.TempDir(), "no-such-server")}
				return s
			},
			startup: true,
			want:    []string{"no-such-server", "no such file"},
			within:  5 * time.Second,
		},
		{
			// A model stored before CreateModel refused such keys.
			name: "loader variable",
			spec: func(s runtime.InstanceSpec) runtime.InstanceSpec {
				s.Containers[0].Env = map[string]string{"LD_PRELOAD": "/tmp/x.so"}
				return s
			},
			startup: true,
			want:    []string{"LD_PRELOAD is not allowed"},
			within:  time.Second,
		},
		{
			name: "docker image",
			spec: func(s runtime.InstanceSpec) runtime.InstanceSpec {
				s.Containers[0].Image = runtime.Image{Name: "123.dkr.ecr.us-east-1.amazonaws.com/x:1", Kind: runtime.KindDocker, Ref: "123.dkr.ecr.us-east-1.amazonaws.com/x:1"}
				return s
			},
			want:   []string{"Docker", "123.dkr.ecr.us-east-1.amazonaws.com/x:1"},
			within: time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec(testSpec(t, "fail/"+tt.name, nil))
			begin := time.Now()
			in, err := r.Start(t.Context(), spec)
			took := time.Since(begin)
			if err == nil {
				in.Stop(t.Context())
				t.Fatal("start succeeded, want an error")
			}
			t.Logf("error: %v", err)
			if got := errors.Is(err, runtime.ErrStartup); got != tt.startup {
				t.Errorf("errors.Is(err, ErrStartup) = %v, want %v", got, tt.startup)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if took > tt.within {
				t.Errorf("start took %s to fail, want under %s", took, tt.within)
			}
			dir := filepath.Join(r.opts.StateDir, instanceDirName(spec.ID))
			if _, err := os.Stat(filepath.Join(dir, pidFileName)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pid file left behind after a failed start: %v", err)
			}
			if r.ownsDir(dir) {
				t.Error("failed instance still registered")
			}
		})
	}
}

func TestFailedStartLogsStderr(t *testing.T) {
	r := newRuntime(t, fastOptions())
	spec := testSpec(t, "stderr-log", map[string]string{"TESTSERVER_FAIL_START": "1"})
	if _, err := r.Start(t.Context(), spec); err == nil {
		t.Fatal("start succeeded")
	}
	b, err := os.ReadFile(filepath.Join(r.opts.StateDir, instanceDirName(spec.ID), "stderr.log"))
	if err != nil || !bytes.Contains(b, []byte("boom: bad model")) {
		t.Errorf("stderr.log = %q, %v", b, err)
	}
}

func TestRestart(t *testing.T) {
	tests := []struct {
		name, path string
	}{
		{"process crashes", "/crash"},
		{"health checks fail", "/unhealthy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRuntime(t, fastOptions())
			in := startInstance(t, r, testSpec(t, "restart", nil))
			firstPID, firstURL := in.PID(), in.URL()

			poke(firstURL + tt.path)
			testutil.WaitFor(t, 10*time.Second, func() error {
				if in.Restarts() != 1 || !in.Healthy() {
					return fmt.Errorf("restarts=%d healthy=%v", in.Restarts(), in.Healthy())
				}
				return nil
			})
			if in.PID() == firstPID {
				t.Errorf("pid %d unchanged after restart", firstPID)
			}
			if alive(firstPID) {
				t.Errorf("old process %d still runs", firstPID)
			}
			resp, body := post(t, in.URL(), "/invocations", "text/plain", "again")
			if resp.StatusCode != http.StatusOK || body != "again" {
				t.Errorf("invoke after restart = %d %q", resp.StatusCode, body)
			}
		})
	}
}

func TestRestartBacksOffWhileFailing(t *testing.T) {
	// The server starts, then a marker file makes every later start fail:
	// the instance must stay down, keep trying, and stop cleanly.
	r := newRuntime(t, fastOptions())
	dir := t.TempDir()
	script := filepath.Join(dir, "serve.sh")
	bin := testserverbin.Build(t)
	body := fmt.Sprintf("#!/bin/sh\nif [ -e %q ]; then echo 'cannot load' >&2; exit 4; fi\nexec %q\n", filepath.Join(dir, "broken"), bin)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := testSpec(t, "flaky", nil)
	spec.Containers[0].Image.Command = []string{script}
	in := startInstance(t, r, spec)
	if err := os.WriteFile(filepath.Join(dir, "broken"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	poke(in.URL() + "/crash")
	testutil.WaitFor(t, 10*time.Second, func() error {
		// The current process may be one just started, with no output yet.
		tail := in.StderrTail()
		if in.Restarts() < 3 || len(tail) == 0 || tail[len(tail)-1] != "cannot load" {
			return fmt.Errorf("restarts=%d, stderr tail %q", in.Restarts(), tail)
		}
		return nil
	})
	if in.Healthy() {
		t.Error("healthy while every restart fails")
	}
	if err := in.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestStop(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		grace    time.Duration
		ctxLimit time.Duration // 0: no deadline
		wantErr  bool
		minTook  time.Duration
	}{
		{name: "exits on SIGTERM", grace: 5 * time.Second},
		{name: "killed after grace", env: map[string]string{"TESTSERVER_IGNORE_TERM": "1"}, grace: 300 * time.Millisecond, minTook: 300 * time.Millisecond},
		{name: "killed when ctx ends", env: map[string]string{"TESTSERVER_IGNORE_TERM": "1"}, grace: time.Hour, ctxLimit: 200 * time.Millisecond, wantErr: true, minTook: 200 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastOptions()
			opts.StopGrace = tt.grace
			r := newRuntime(t, opts)
			in := startInstance(t, r, testSpec(t, "stop", tt.env))
			pid := in.PID()

			ctx := t.Context()
			if tt.ctxLimit > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxLimit)
				defer cancel()
			}
			begin := time.Now()
			err := in.Stop(ctx)
			took := time.Since(begin)
			if (err != nil) != tt.wantErr {
				t.Errorf("stop error = %v, want error %v", err, tt.wantErr)
			}
			if took < tt.minTook || took > tt.minTook+5*time.Second {
				t.Errorf("stop took %s, want about %s", took, tt.minTook)
			}
			if alive(pid) {
				t.Errorf("process %d still runs after Stop", pid)
			}
			if in.Healthy() {
				t.Error("healthy after Stop")
			}
			if _, err := os.Stat(filepath.Join(in.Dir(), pidFileName)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("pid file left after Stop: %v", err)
			}
			if err := in.Stop(t.Context()); err != nil {
				t.Errorf("second stop: %v", err)
			}
			// The ID is free again.
			again := startInstance(t, r, testSpec(t, "stop", nil))
			again.Stop(t.Context())
		})
	}
}

func TestDuplicateID(t *testing.T) {
	r := newRuntime(t, fastOptions())
	startInstance(t, r, testSpec(t, "dup", nil))
	if _, err := r.Start(t.Context(), testSpec(t, "dup", nil)); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second start with the same id: %v, want already running", err)
	}
}

func TestPortRange(t *testing.T) {
	opts := fastOptions()
	opts.PortRange = [2]int{24000, 24099} // below Linux's default ephemeral range
	opts.SafePorts = 4
	r := newRuntime(t, opts)
	for i := range 3 {
		in := startInstance(t, r, testSpec(t, fmt.Sprintf("ranged/%d", i), nil))
		u, _ := url.Parse(in.URL())
		port, _ := strconv.Atoi(u.Port())
		if port < 24000 || port > 24099 || (port-24000)%5 != 0 {
			t.Errorf("port %d not a block start in 24000-24099", port)
		}
	}
}

func TestSweepStrays(t *testing.T) {
	dir := t.TempDir()
	bin := testserverbin.Build(t)

	stray := exec.Command(bin)
	stray.Env = []string{"SAGEMAKER_BIND_TO_PORT=0"}
	stray.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	waited := make(chan struct{})
	go func() {
		waitErr = stray.Wait()
		close(waited)
	}()
	t.Cleanup(func() {
		stray.Process.Kill()
		<-waited
	})

	files := map[string]string{
		"old-instance": "", // filled with the stray's pid file below
		"reused-pid":   fmt.Sprintf("%d 1\n", os.Getpid()),
		"gone":         "999999999 5\n",
	}
	for name, content := range files {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if content == "" {
			if err := writePIDFile(d, stray.Process.Pid); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(filepath.Join(d, pidFileName), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	r := newRuntime(t, Options{StateDir: dir})
	killed, err := sweepStrays(r)
	if err != nil {
		t.Errorf("sweep: %v", err)
	}
	if killed != 1 {
		t.Errorf("killed = %d, want 1", killed)
	}
	select {
	case <-waited:
		var ee *exec.ExitError
		if !errors.As(waitErr, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("stray ended with %v, want SIGKILL", waitErr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stray process still runs")
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*", pidFileName))
	if len(left) != 0 {
		t.Errorf("pid files left: %v", left)
	}

	// A broken pid file is reported but does not stop the sweep.
	if err := os.WriteFile(filepath.Join(dir, "gone", pidFileName), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := sweepStrays(r); err == nil {
		t.Error("sweep of a garbage pid file reported no error")
	}
}

func TestSweepSparesOwnInstances(t *testing.T) {
	r := newRuntime(t, fastOptions())
	in := startInstance(t, r, testSpec(t, "mine", nil))
	killed, err := sweepStrays(r)
	if err != nil || killed != 0 {
		t.Errorf("sweep = %d, %v; want 0, nil", killed, err)
	}
	if !alive(in.PID()) {
		t.Error("sweep killed a live instance of this runtime")
	}
}

// TestParentDeath kills a fake berth with SIGKILL and checks that its model
// process dies too (Pdeathsig).
func TestParentDeath(t *testing.T) {
	bin := testserverbin.Build(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	parent := exec.CommandContext(ctx, os.Args[0])
	parent.Env = append(os.Environ(), fakeParentEnv+"="+bin, "PROCESS_TEST_STATE_DIR="+t.TempDir())
	parent.Stderr = t.Output()
	stdin, err := parent.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var child int
	if !sc.Scan() {
		parent.Wait()
		t.Fatalf("fake parent printed no pid: %v", sc.Err())
	}
	if _, err := fmt.Sscanf(sc.Text(), "pid %d", &child); err != nil {
		t.Fatalf("fake parent said %q: %v", sc.Text(), err)
	}
	if !alive(child) {
		t.Fatalf("child %d not running", child)
	}
	parent.Process.Signal(syscall.SIGKILL)
	parent.Wait()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if alive(child) {
			return fmt.Errorf("child %d still runs after its parent was killed", child)
		}
		return nil
	})
}

// TestChildSurvivesStartingThreadExit starts an instance from a goroutine
// whose OS thread then exits. Pdeathsig follows the forking thread, so the
// model process survives only because forks happen on the forker thread.
func TestChildSurvivesStartingThreadExit(t *testing.T) {
	r := newRuntime(t, fastOptions())
	spec := testSpec(t, "thread", nil)
	var (
		in  runtime.Instance
		err error
		tid int
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		goruntime.LockOSThread() // never unlocked: the thread exits with this goroutine
		tid = syscall.Gettid()
		in, err = r.Start(context.Background(), spec)
	}()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if _, err := os.Stat(fmt.Sprintf("/proc/self/task/%d", tid)); err == nil {
			return fmt.Errorf("thread %d still exists", tid)
		}
		return nil
	})
	resp, body := post(t, in.URL(), "/invocations", "text/plain", "still here")
	if body != "still here" || resp.Header.Get("X-Testserver-Instance") != strconv.Itoa(in.(*Instance).PID()) {
		t.Errorf("invoke = %q from %s", body, resp.Header.Get("X-Testserver-Instance"))
	}
	if in.Restarts() != 0 {
		t.Errorf("restarts = %d, want 0", in.Restarts())
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	testserverbin.Build(t) // before the baseline: building uses goroutines
	before := goruntime.NumGoroutine()

	opts := fastOptions()
	opts.StateDir = t.TempDir()
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	r, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for i := range 3 {
		in, err := r.Start(t.Context(), testSpec(t, fmt.Sprintf("leak/%d", i), nil))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, in.(*Instance).PID())
	}
	// One instance is mid-restart, one failed to start.
	poke(fmt.Sprintf("http://127.0.0.1:%s/crash", portOf(t, r, "leak/0")))
	if _, err := r.Start(t.Context(), testSpec(t, "leak/bad", map[string]string{"TESTSERVER_FAIL_START": "1"})); err == nil {
		t.Fatal("start of a failing server succeeded")
	}

	if err := r.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d still runs after Close", pid)
		}
	}
	if _, err := r.Start(t.Context(), testSpec(t, "late", nil)); err == nil {
		t.Error("start after Close succeeded")
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if n := goruntime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			return fmt.Errorf("%d goroutines, %d before:\n%s", n, before, buf[:goruntime.Stack(buf, true)])
		}
		return nil
	})
}

// sweepStrays runs the start-up clean-up of r, which adopts nothing.
func sweepStrays(r *Runtime) (int, error) {
	adopted, n, err := r.Recover(context.Background())
	if len(adopted) != 0 {
		panic("the process runtime adopted an instance")
	}
	return n, err
}

func portOf(t *testing.T, r *Runtime, id string) string {
	t.Helper()
	r.mu.Lock()
	in := r.instances[filepath.Join(r.opts.StateDir, instanceDirName(id))]
	r.mu.Unlock()
	if in == nil {
		t.Fatalf("no instance %s", id)
	}
	u, err := url.Parse(in.URL())
	if err != nil {
		t.Fatal(err)
	}
	return u.Port()
}

// TestRestartBackoffDelays: the delay before each restart doubles while
// the process keeps crashing, and goes back to BackoffMin once it has
// stayed healthy for BackoffReset. The clock and the delays are the
// test's, so nothing waits for them.
func TestRestartBackoffDelays(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	delays := make(chan time.Duration, 16)
	opts := fastOptions()
	opts.BackoffMin, opts.BackoffMax, opts.BackoffReset = time.Second, 3*time.Second, time.Minute
	opts.Now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	opts.After = func(d time.Duration) <-chan time.Time {
		delays <- d
		fired := make(chan time.Time, 1)
		fired <- time.Time{}
		return fired
	}
	r := newRuntime(t, opts)
	in := startInstance(t, r, testSpec(t, "backoff", nil))
	crash := func(restarts int) time.Duration {
		t.Helper()
		poke(in.URL() + "/crash")
		var d time.Duration
		select {
		case d = <-delays:
		case <-time.After(10 * time.Second):
			t.Fatal("no restart after a crash")
		}
		testutil.WaitFor(t, 10*time.Second, func() error {
			if n := in.Restarts(); n != restarts || !in.Healthy() {
				return fmt.Errorf("restarts=%d healthy=%v", n, in.Healthy())
			}
			return nil
		})
		return d
	}
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second}
	for i, w := range want {
		if d := crash(i + 1); d != w {
			t.Fatalf("delay before restart %d: %s, want %s", i+1, d, w)
		}
	}
	// Healthy for a minute since the last restart: back to the minimum.
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if d := crash(len(want) + 1); d != time.Second {
		t.Fatalf("delay after a healthy minute: %s, want %s", d, time.Second)
	}
	if d := crash(len(want) + 2); d != 2*time.Second {
		t.Fatalf("delay after the reset: %s, want %s", d, 2*time.Second)
	}
}
