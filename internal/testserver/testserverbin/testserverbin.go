// Package testserverbin builds the testserver model server for tests. The
// binary is built once per test binary and shared by every test in it.
package testserverbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

const pkg = "github.com/berth-io/berth/internal/testserver"

// build caches one build per test binary. It is package state on purpose:
// a test binary has exactly one set of tests that share the built server.
var build struct {
	once sync.Once
	dir  string
	path string
	out  []byte
	err  error
}

// Build returns the path of a freshly built testserver binary, building it
// on first use with the go command from PATH. The binary lives in a
// temporary directory shared by the test binary's tests, which Run removes
// after the last of them.
func Build(t testing.TB) string {
	t.Helper()
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "berth-testserver-")
		if err != nil {
			build.err = err
			return
		}
		build.dir = dir
		path := filepath.Join(dir, "testserver")
		cmd := exec.Command("go", "build", "-o", path, pkg)
		build.out, build.err = cmd.CombinedOutput()
		build.path = path
	})
	if build.err != nil {
		t.Fatalf("build testserver: %v\n%s", build.err, build.out)
	}
	return build.path
}

// Run runs the tests, then removes the binary Build made, if any: call it
// from TestMain as os.Exit(testserverbin.Run(m)).
func Run(m *testing.M) int {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	return code
}
