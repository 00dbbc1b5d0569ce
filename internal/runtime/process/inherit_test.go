//go:build linux

package process

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/berth-io/berth/internal/testserver/testserverbin"
)

// TestNoInheritedDescriptors: a descriptor berth inherited without
// close-on-exec (here: opened so by the test, as a shell's "3<file" would
// hand it to berth) does not reach model processes, which may run as a
// user that could not open the file.
func TestNoInheritedDescriptors(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("berth's"), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Open(secret, syscall.O_RDONLY, 0) // no O_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)

	r := newRuntime(t, fastOptions())
	out := filepath.Join(t.TempDir(), "fds")
	spec := testSpec(t, "fds", nil)
	// The shell lists its descriptors (its own /proc entry, not ls's).
	spec.Containers[0].Image.Command = []string{"/bin/sh", "-c", `for f in /proc/$$/fd/*; do readlink "$f"; done > "$1"; exec "$0"`, testserverbin.Build(t), out}
	startInstance(t, r, spec)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secret) {
		t.Errorf("the model process holds berth's inherited descriptor %d (%s); its descriptors:\n%s", fd, secret, b)
	}
}
