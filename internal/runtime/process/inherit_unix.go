//go:build unix

package process

import (
	"os"
	"strconv"
	"syscall"
)

// closeInheritedOnExec marks every descriptor above stderr close-on-exec,
// so that a model process gets none of berth's open files. Go opens its
// own files close-on-exec, but descriptors berth inherited from whatever
// started it (a shell's redirection, a process manager's sockets or log
// files, a leaked pipe) are not, and exec would hand them to every model
// process, which may run as another user that could not open them. It is
// run before each launch (a listing of a few dozen entries) rather than
// once, so that a descriptor opened later by C code is covered too.
func closeInheritedOnExec() {
	for _, dir := range []string{"/proc/self/fd", "/dev/fd"} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
				syscall.CloseOnExec(fd)
			}
		}
		return
	}
}
