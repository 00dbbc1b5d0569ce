//go:build unix

package fdlimit

import (
	"fmt"
	"syscall"
)

// Raise sets the soft open-file limit to the hard limit and returns the
// limit now in force. The Go runtime already raises it for its own process
// (since Go 1.19), so on Linux this mostly reads it back; it is kept for
// clarity and for runtimes that do not. Raising it here leaves the Go
// runtime's behaviour for child processes alone when there is nothing to
// raise: os/exec then starts them with the original soft limit, as
// programs that use select(2) expect.
func Raise() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("read open-file limit: %w", err)
	}
	if lim.Cur >= lim.Max {
		return uint64(lim.Cur), nil
	}
	want := lim
	want.Cur = want.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		// Some systems (macOS) refuse an unlimited hard limit as the
		// soft one; try the ceiling instead.
		want.Cur = min(want.Max, ceiling)
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err2 != nil {
			return uint64(lim.Cur), fmt.Errorf("raise open-file limit from %d to %d: %w", lim.Cur, lim.Max, err)
		}
	}
	return uint64(want.Cur), nil
}
