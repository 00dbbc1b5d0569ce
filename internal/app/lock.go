package app

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// lockFile is the file in the data dir whose lock marks it in use.
const lockFile = "berth.lock"

// ErrDataDirInUse means another berth holds the data dir's lock.
var ErrDataDirInUse = errors.New("in use by another berth")

// dirLock is an exclusive lock on a data dir, held for the life of the
// process. It is an flock on a file, so the kernel releases it when the
// process dies, even by SIGKILL: a restart after a crash never finds a
// stale lock. The descriptor is close-on-exec, so model processes do not
// inherit the lock and cannot keep it after berth is gone.
type dirLock struct{ f *os.File }

// lockDataDir takes the lock of dir or reports, with ErrDataDirInUse,
// which process holds it. It must run before anything else touches the
// data dir: a second berth must not kill the first one's model processes
// or wipe its multipart spool before it finds the port taken.
func lockDataDir(dir string) (*dirLock, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open data dir lock: %w", err)
	}
	held, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock data dir: %w", err)
	}
	if held {
		pid := "unknown"
		if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
			pid = strings.TrimSpace(string(b))
		}
		f.Close()
		return nil, fmt.Errorf("data dir %s is %w (pid %s)", dir, ErrDataDirInUse, pid)
	}
	// The pid is for the message above and for people; the lock is what
	// counts.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dirLock{f: f}, nil
}

// release gives the lock up (Shutdown; the kernel does it on exit).
func (l *dirLock) release() {
	if l == nil || l.f == nil {
		return
	}
	_ = l.f.Truncate(0)
	_ = unlock(l.f)
	_ = l.f.Close()
	l.f = nil
}
