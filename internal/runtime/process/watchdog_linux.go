package process

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
)

// The watchdog is a copy of the running executable, started by New, that
// waits for berth to exit however it exits: the kernel closes the pipe
// berth holds even after kill -9. It then kills every process group
// recorded under the state dir. Pdeathsig alone only reaches each group's
// leader: a shell's grandchild would outlive berth until the next start-up
// sweep.
//
// A binary that links this package turns into the watchdog when started
// with watchdogArg0 as argv[0] and watchdogEnv set, before its main (or
// TestMain) runs; nothing else starts a program that way.
const (
	watchdogArg0 = "berth-process-watchdog"
	watchdogEnv  = "BERTH_PROCESS_WATCHDOG_STATE_DIR"
)

func init() {
	if len(os.Args) == 1 && os.Args[0] == watchdogArg0 {
		if dir := os.Getenv(watchdogEnv); dir != "" {
			os.Exit(watchdogMain(dir, os.Stdin))
		}
	}
}

// watchdogMain waits for EOF on lifeline, then sweeps stateDir of the
// groups recorded up to that moment (a berth started later on the same
// directory may already be recording its own).
func watchdogMain(stateDir string, lifeline io.Reader) int {
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGPIPE)
	io.Copy(io.Discard, lifeline)
	now, err := bootTicks()
	if err != nil {
		return 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "runtime/process watchdog")
	if _, err := sweep(stateDir, nil, now, log); err != nil {
		log.Warn("sweep after berth exited", "err", err)
		return 1
	}
	return 0
}

// clockTicks is USER_HZ, the unit of start times in /proc/<pid>/stat: 100
// on every Linux architecture.
const clockTicks = 100

// bootTicks returns the time since boot in clock ticks, rounded up.
func bootTicks() (uint64, error) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0, fmt.Errorf("parse /proc/uptime: %q", b)
	}
	secs, err := strconv.ParseFloat(string(f[0]), 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/uptime: %w", err)
	}
	return uint64(secs*clockTicks) + 1, nil
}

// watchdog is the running watchdog process as berth sees it.
type watchdog struct {
	cmd      *exec.Cmd
	lifeline *os.File // write end; closing it (or dying) wakes the watchdog
	done     chan struct{}
}

// startWatchdog starts the watchdog for stateDir.
func startWatchdog(stateDir string) (*watchdog, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	defer r.Close()
	cmd := &exec.Cmd{
		Path:  "/proc/self/exe", // this executable, even if replaced on disk since
		Args:  []string{watchdogArg0},
		Env:   []string{watchdogEnv + "=" + stateDir},
		Stdin: r,
		// Not in berth's process group or session: a signal meant for
		// berth's terminal job must not take the watchdog with it.
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start watchdog: %w", err)
	}
	wd := &watchdog{cmd: cmd, lifeline: w, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(wd.done)
	}()
	return wd, nil
}

// stop wakes the watchdog, which finds nothing left to kill, and waits for
// it to exit or for abandon to be closed.
func (wd *watchdog) stop(abandon <-chan struct{}) {
	wd.lifeline.Close()
	select {
	case <-wd.done:
	case <-abandon:
	}
}
