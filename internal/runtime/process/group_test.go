//go:build linux

package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/runtime"
	"github.com/berth-io/berth/internal/testserver/testserverbin"
	"github.com/berth-io/berth/internal/testutil"
)

// The scripts below run as "sh -c <script> <testserver>", so "$0" is the
// test server. The shell stays the group leader, and the server is its
// child: berth's grandchild, which Pdeathsig does not reach.
const (
	// shellParent is the case from the field: a shell that runs the
	// server and waits for it.
	shellParent = `"$0"; exit $?`
	// deafFamily ignores SIGTERM in the shell and in the server.
	deafFamily = `trap '' TERM; TESTSERVER_IGNORE_TERM=1 "$0"; exit $?`
	// deafChild: the leader (the server the shell became) heeds SIGTERM,
	// the child it inherited from the shell ignores it (an ignored
	// signal stays ignored across exec).
	deafChild = `(trap '' TERM; exec sleep 600) & exec "$0"`
)

func shellSpec(t *testing.T, id, script string) runtime.InstanceSpec {
	t.Helper()
	spec := testSpec(t, id, nil)
	spec.Containers[0].Image.Command = []string{"/bin/sh", "-c", script, testserverbin.Build(t)}
	return spec
}

// groupMembers lists the live processes of process group pgid.
func groupMembers(pgid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if info, err := readProcInfo(pid); err == nil && info.pgid == pgid && info.state != 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

// grandchildOf waits for the process group led by leader to hold another
// process, and returns it.
func grandchildOf(t *testing.T, leader int) int {
	t.Helper()
	var gc int
	testutil.WaitFor(t, 5*time.Second, func() error {
		for _, pid := range groupMembers(leader) {
			if pid != leader {
				gc = pid
				return nil
			}
		}
		return fmt.Errorf("group %d has no member but its leader", leader)
	})
	return gc
}

func waitDead(t *testing.T, timeout time.Duration, pids ...int) {
	t.Helper()
	testutil.WaitFor(t, timeout, func() error {
		for _, pid := range pids {
			if alive(pid) {
				return fmt.Errorf("process %d still runs", pid)
			}
		}
		return nil
	})
}

// TestRecordedBeforeFirstInstruction: the pid file names the process and
// its group by the time the process runs its first command.
func TestRecordedBeforeFirstInstruction(t *testing.T) {
	r := newRuntime(t, fastOptions())
	out := filepath.Join(t.TempDir(), "seen")
	spec := testSpec(t, "gated", nil)
	// The working directory is the instance directory, which holds the
	// pid file.
	spec.Containers[0].Image.Command = []string{"/bin/sh", "-c", `cat pid > "$1" 2>&1 || echo missing > "$1"; exec "$0"`, testserverbin.Build(t), out}
	in := startInstance(t, r, spec)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	start, _, err := procStartTime(in.PID())
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d %d %d %d\n", in.PID(), in.PID(), start, mustSid(t)); string(b) != want {
		t.Errorf("the process saw pid file %q, want %q", b, want)
	}
	if info, _ := readProcInfo(in.PID()); info.pgid != in.PID() || info.session != mustSid(t) {
		t.Errorf("process %d: group %d, session %d; want it to lead its group in berth's session %d", in.PID(), info.pgid, info.session, mustSid(t))
	}
}

// mustSid returns the session of the test process, which model processes
// share (a session of their own would put them in a scheduling autogroup
// of their own).
func mustSid(t *testing.T) int {
	t.Helper()
	info, err := readProcInfo(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	return info.session
}

// TestStopKillsGrandchildren: Stop leaves nothing of the group behind,
// whether the shell and its child heed SIGTERM or not.
func TestStopKillsGrandchildren(t *testing.T) {
	const grace = 500 * time.Millisecond
	tests := []struct {
		name    string
		script  string
		minTook time.Duration
		maxTook time.Duration
	}{
		{"all heed SIGTERM", shellParent, 0, grace + 5*time.Second},
		{"child ignores SIGTERM", deafChild, 0, grace + 5*time.Second},
		{"all ignore SIGTERM", deafFamily, grace, grace + 5*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastOptions()
			opts.StopGrace = grace
			r := newRuntime(t, opts)
			in := startInstance(t, r, shellSpec(t, "family", tt.script))
			leader := in.PID()
			gc := grandchildOf(t, leader)
			begin := time.Now()
			if err := in.Stop(t.Context()); err != nil {
				t.Fatal(err)
			}
			took := time.Since(begin)
			if took < tt.minTook || took > tt.maxTook {
				t.Errorf("Stop took %s, want %s to %s", took, tt.minTook, tt.maxTook)
			}
			waitDead(t, 5*time.Second, leader, gc)
		})
	}
}

// TestCrashKillsGrandchildren: when the leader dies the instance restarts
// and the old leader's children are gone.
func TestCrashKillsGrandchildren(t *testing.T) {
	r := newRuntime(t, fastOptions())
	in := startInstance(t, r, shellSpec(t, "crash", shellParent))
	leader := in.PID()
	gc := grandchildOf(t, leader)
	if err := syscall.Kill(leader, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if in.Restarts() != 1 || !in.Healthy() {
			return fmt.Errorf("restarts=%d healthy=%v", in.Restarts(), in.Healthy())
		}
		return nil
	})
	waitDead(t, 5*time.Second, gc)
	if slices.Contains(groupMembers(in.PID()), gc) {
		t.Errorf("old grandchild %d in the new group", gc)
	}
}

// TestKilledBerthLeavesNoGrandchild kills a fake berth with SIGKILL while
// it runs "sh -c server" and checks that the server, which Pdeathsig does
// not reach, dies: at once through the watchdog, and without one through
// the next start-up sweep, although the group's leader is long gone.
func TestKilledBerthLeavesNoGrandchild(t *testing.T) {
	for _, watchdog := range []bool{true, false} {
		t.Run(fmt.Sprintf("watchdog=%v", watchdog), func(t *testing.T) {
			state := t.TempDir()
			env := []string{"PROCESS_TEST_SCRIPT=" + shellParent}
			if !watchdog {
				env = append(env, "PROCESS_TEST_NO_WATCHDOG=1")
			}
			leader, kill := startFakeParent(t, state, env...)
			gc := grandchildOf(t, leader)
			kill()
			waitDead(t, 5*time.Second, leader)
			if watchdog {
				waitDead(t, 5*time.Second, gc)
				return
			}
			time.Sleep(200 * time.Millisecond) // what the watchdog would have needed
			if !alive(gc) {
				t.Fatalf("grandchild %d died without a watchdog: the test shows nothing", gc)
			}
			t.Cleanup(func() { syscall.Kill(gc, syscall.SIGKILL) })
			r := newRuntime(t, Options{StateDir: state, NoWatchdog: true})
			killed, err := sweepStrays(r)
			if err != nil || killed != 1 {
				t.Errorf("sweep = %d, %v; want 1, nil", killed, err)
			}
			waitDead(t, 5*time.Second, gc)
			if left, _ := filepath.Glob(filepath.Join(state, "*", pidFileName)); len(left) != 0 {
				t.Errorf("pid files left: %v", left)
			}
		})
	}
}

// startFakeParent runs this test binary as a fake berth with one instance
// and returns the instance's pid and a function that kills the fake berth
// with SIGKILL.
func startFakeParent(t *testing.T, stateDir string, env ...string) (int, func()) {
	t.Helper()
	bin := testserverbin.Build(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	parent := exec.CommandContext(ctx, os.Args[0])
	parent.Env = append(append(os.Environ(), fakeParentEnv+"="+bin, "PROCESS_TEST_STATE_DIR="+stateDir), env...)
	parent.Stderr = t.Output()
	stdin, err := parent.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := parent.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	kill := func() {
		parent.Process.Signal(syscall.SIGKILL)
		parent.Wait()
		stdin.Close()
		cancel()
	}
	t.Cleanup(kill)
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		kill()
		t.Fatalf("fake parent printed no pid: %v", sc.Err())
	}
	var pid int
	if _, err := fmt.Sscanf(sc.Text(), "pid %d", &pid); err != nil {
		t.Fatalf("fake parent said %q: %v", sc.Text(), err)
	}
	return pid, kill
}

// TestSweepSparesReusedGroup: a pid file whose leader is gone and whose
// group id now belongs to an unrelated group (another session) is
// removed without killing anything.
func TestSweepSparesReusedGroup(t *testing.T) {
	// An unrelated group: a process leading its own group in this
	// session, so its session id differs from its group id.
	other := exec.Command("sleep", "60")
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	state := t.TempDir()
	d := filepath.Join(state, "old")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	// The recorded leader (a pid that does not exist) had the group id
	// that the unrelated group has now.
	content := fmt.Sprintf("%d %d 1\n", 999999999, other.Process.Pid)
	if err := os.WriteFile(filepath.Join(d, pidFileName), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	r := newRuntime(t, Options{StateDir: state, NoWatchdog: true})
	killed, err := sweepStrays(r)
	if err != nil || killed != 0 {
		t.Errorf("sweep = %d, %v; want 0, nil", killed, err)
	}
	if !alive(other.Process.Pid) {
		t.Error("sweep killed an unrelated group")
	}
	if _, err := os.Stat(filepath.Join(d, pidFileName)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file kept: %v", err)
	}
}
