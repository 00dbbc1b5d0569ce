package process

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pidFileName is the file, in an instance directory, naming the running
// process: "<pid> <pgid> <start time> <session>\n", the start time being field 22
// of /proc/<pid>/stat (clock ticks since boot), so that a pid reused by an
// unrelated process is never mistaken for ours. The process leads its own
// process group, so pgid equals pid; it is written down so
// that the group can be found once its leader is gone, with the session
// the group belongs to (berth's), which tells it from an unrelated group
// that reuses the number later. It is written
// before the process runs any code of its own (see startGated). Files of
// the older forms "<pid> <pgid> <start time>" (a process that led its own
// session) and "<pid> <start time>" are read too.
const pidFileName = "pid"

// procInfo is what berth reads about a process from /proc/<pid>/stat.
type procInfo struct {
	state   byte   // field 3: R, S, Z, ...
	pgid    int    // field 5
	session int    // field 6
	start   uint64 // field 22, clock ticks since boot
}

// readProcInfo parses /proc/<pid>/stat.
func readProcInfo(pid int) (procInfo, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, err
	}
	// The command name (field 2) is in parentheses and may itself contain
	// spaces and parentheses: fields resume after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procInfo{}, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	field := func(n int) string { return f[n-3] } // n is 1-based, as in proc(5)
	const startField = 22
	if len(f) < startField-2 {
		return procInfo{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var info procInfo
	info.state = field(3)[0]
	if info.pgid, err = strconv.Atoi(field(5)); err == nil {
		if info.session, err = strconv.Atoi(field(6)); err == nil {
			info.start, err = strconv.ParseUint(field(startField), 10, 64)
		}
	}
	if err != nil {
		return procInfo{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return info, nil
}

// procStartTime returns the start time of a live process from
// /proc/<pid>/stat, and whether it is a zombie.
func procStartTime(pid int) (start uint64, zombie bool, err error) {
	info, err := readProcInfo(pid)
	return info.start, info.state == 'Z', err
}

// pidRecord is the content of a pid file.
type pidRecord struct {
	pid, pgid int
	start     uint64
	// session is the session of the group; -1 when unknown (the oldest
	// form), and then orphans of a dead leader are never swept.
	session int
}

// writePIDFile records pid, which leads its own process group, with its
// start time in dir, atomically.
func writePIDFile(dir string, pid int) error {
	info, err := readProcInfo(pid)
	if err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	tmp := filepath.Join(dir, pidFileName+".tmp")
	data := fmt.Sprintf("%d %d %d %d\n", pid, pid, info.start, info.session)
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, pidFileName)); err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	return nil
}

func readPIDFile(path string) (pidRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return pidRecord{}, err
	}
	f := strings.Fields(string(b))
	var r pidRecord
	switch len(f) {
	case 2: // the oldest form: the group id is the pid, the session unknown
		f = []string{f[0], f[0], f[1]}
		r.session = -1
	case 3: // the process led its own session too
	case 4:
		if r.session, err = strconv.Atoi(f[3]); err != nil || r.session < 0 {
			return pidRecord{}, fmt.Errorf("pid file %s: bad session %q", path, f[3])
		}
	default:
		return pidRecord{}, fmt.Errorf("pid file %s: want \"<pid> <pgid> <start time> <session>\"", path)
	}
	if r.pid, err = strconv.Atoi(f[0]); err != nil || r.pid <= 1 {
		return pidRecord{}, fmt.Errorf("pid file %s: bad pid %q", path, f[0])
	}
	if r.pgid, err = strconv.Atoi(f[1]); err != nil || r.pgid <= 1 {
		return pidRecord{}, fmt.Errorf("pid file %s: bad process group %q", path, f[1])
	}
	if r.start, err = strconv.ParseUint(f[2], 10, 64); err != nil {
		return pidRecord{}, fmt.Errorf("pid file %s: bad start time %q", path, f[2])
	}
	if len(f) == 3 && r.session == 0 {
		r.session = r.pgid
	}
	return r, nil
}

// strayGroup reports whether the process group of rec still has members
// that belong to it, and so may be killed as a whole.
//
// While its leader lives with the recorded start time, the group is ours.
// Once the leader is gone the group may live on (a shell's grandchild),
// and its id cannot be handed to a new process while any member lives:
// Linux keeps a pid number allocated while a process uses it as its group
// or session id. So if a process now runs under the leader's pid with
// another start time, the number was free, the group had died, and
// nothing may be killed. If no process has that pid, members whose group
// and session are the recorded ones and which started no earlier than the
// leader are the orphans of our group (an unrelated group that reuses the
// number after ours died belongs to another session, or started later
// than a leader of ours could have).
func strayGroup(rec pidRecord) bool {
	if leader, err := readProcInfo(rec.pid); err == nil {
		return leader.start == rec.start && leader.pgid == rec.pgid
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		info, err := readProcInfo(pid)
		if err == nil && info.pgid == rec.pgid && info.session == rec.session && info.start >= rec.start && info.state != 'Z' {
			return true
		}
	}
	return false
}

// sweep kills the process groups named by the pid files under stateDir
// that still have members of their own (see strayGroup), except those
// whose directory skip says to leave and those recorded as started after
// notAfter (clock ticks since boot; 0 means no bound). It removes the pid
// files of groups found dead or killed, waits briefly for the killed
// groups to vanish, and returns their number.
func sweep(stateDir string, skip func(dir string) bool, notAfter uint64, log *slog.Logger) (killed int, err error) {
	files, err := filepath.Glob(filepath.Join(stateDir, "*", pidFileName))
	if err != nil {
		return 0, fmt.Errorf("sweep strays: %w", err)
	}
	var errs []error
	var victims []int
	for _, path := range files {
		if skip != nil && skip(filepath.Dir(path)) {
			continue
		}
		rec, err := readPIDFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile (by the watchdog of the berth that wrote it)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if notAfter != 0 && rec.start > notAfter {
			continue
		}
		if strayGroup(rec) {
			if err := syscall.Kill(-rec.pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, fmt.Errorf("kill stray process group %d: %w", rec.pgid, err))
				continue
			}
			log.Warn("killed stray model process group", "pid", rec.pid, "pgid", rec.pgid, "pid_file", path)
			killed++
			victims = append(victims, rec.pgid)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove pid file: %w", err))
		}
	}
	// A killed stray belongs to another parent (init, usually), so it cannot
	// be waited for: poll until its group is gone (or only zombies), so
	// that its ports are free when this returns.
	deadline := time.Now().Add(2 * time.Second)
	for _, pgid := range victims {
		for !groupGone(pgid) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return killed, errors.Join(errs...)
}

// groupGone reports whether no live process is left in process group
// pgid (zombies do not count).
func groupGone(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if info, err := readProcInfo(pid); err == nil && info.pgid == pgid && info.state != 'Z' {
			return false
		}
	}
	return true
}
