package process

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pidFileName is the file, in an instance directory, naming the running
// process: "<pid> <start time>\n", the start time being field 22 of
// /proc/<pid>/stat (clock ticks since boot), so that a pid reused by an
// unrelated process is never mistaken for ours.
const pidFileName = "pid"

// procStartTime returns the start time of a live process from
// /proc/<pid>/stat, and whether it is a zombie.
func procStartTime(pid int) (start uint64, zombie bool, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false, err
	}
	// The command name (field 2) is in parentheses and may itself contain
	// spaces and parentheses: fields resume after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	const stateField, startField = 3, 22 // 1-based, as in proc(5)
	if len(fields) < startField-2 {
		return 0, false, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	start, err = strconv.ParseUint(fields[startField-3], 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("parse /proc/%d/stat start time: %w", pid, err)
	}
	return start, fields[stateField-3] == "Z", nil
}

// writePIDFile records pid (with its start time) in dir, atomically.
func writePIDFile(dir string, pid int) error {
	start, _, err := procStartTime(pid)
	if err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	tmp := filepath.Join(dir, pidFileName+".tmp")
	data := fmt.Sprintf("%d %d\n", pid, start)
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, pidFileName)); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

func readPIDFile(path string) (pid int, start uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("pid file %s: want \"<pid> <start time>\"", path)
	}
	if pid, err = strconv.Atoi(f[0]); err != nil || pid <= 1 {
		return 0, 0, fmt.Errorf("pid file %s: bad pid %q", path, f[0])
	}
	if start, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("pid file %s: bad start time %q", path, f[1])
	}
	return pid, start, nil
}

// SweepStrays kills processes left behind by an earlier berth that died
// without stopping them (kill -9, power loss of the supervisor only): for
// every pid file under StateDir whose process still exists with the
// recorded start time, it sends SIGKILL to the process group, waits briefly
// for the process to vanish, and removes the pid file. Pid files of
// instances this Runtime is running are left alone. Call it at start-up,
// before starting instances.
func (r *Runtime) SweepStrays() (killed int, err error) {
	files, err := filepath.Glob(filepath.Join(r.opts.StateDir, "*", pidFileName))
	if err != nil {
		return 0, fmt.Errorf("sweep strays: %w", err)
	}
	var errs []error
	var victims []int
	for _, path := range files {
		if r.ownsDir(filepath.Dir(path)) {
			continue
		}
		pid, start, err := readPIDFile(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if got, zombie, err := procStartTime(pid); err == nil && got == start && !zombie {
			// The process leads its own group (Setpgid), so the group id
			// is its pid; kill the group to take its children with it.
			if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("kill stray process group %d: %w", pid, err))
				continue
			}
			r.log.Warn("killed stray model process", "pid", pid, "pid_file", path)
			killed++
			victims = append(victims, pid)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove pid file: %w", err))
		}
	}
	// A killed stray belongs to another parent (init, usually), so it cannot
	// be waited for: poll until it is gone or a zombie, so that its ports
	// are free when this returns.
	deadline := time.Now().Add(2 * time.Second)
	for _, pid := range victims {
		for !procGone(pid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return killed, errors.Join(errs...)
}

// procGone reports whether pid no longer runs (absent, or a zombie).
func procGone(pid int) bool {
	_, zombie, err := procStartTime(pid)
	return err != nil || zombie
}
