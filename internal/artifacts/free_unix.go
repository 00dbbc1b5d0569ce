//go:build linux || darwin

package artifacts

import (
	"os"
	"path/filepath"
	"syscall"
)

// freeBytes returns the bytes available to unprivileged users on the file
// system of path (or of its nearest existing parent).
func freeBytes(path string) (int64, bool) {
	for {
		var st syscall.Statfs_t
		err := syscall.Statfs(path, &st)
		if err == nil {
			return int64(uint64(st.Bavail) * uint64(st.Bsize)), true
		}
		if !os.IsNotExist(err) {
			return 0, false
		}
		parent := filepath.Dir(path)
		if parent == path {
			return 0, false
		}
		path = parent
	}
}
