package main

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/testserver/testserverbin"
)

// TestKill9KillsGrandchild runs an image that is a shell running the model
// server as its child, as in ["/bin/sh", "-c", "python3 serve.py"]. The
// kernel's parent-death signal reaches only the shell; the server, berth's
// grandchild, must die with berth all the same when berth is killed with
// SIGKILL, and the endpoint must come back when berth restarts.
func TestKill9KillsGrandchild(t *testing.T) {
	bin := buildBerth(t)
	// "; exit" keeps the shell from exec-ing the server in its place.
	cfgFile := writeConfig(t, fmt.Sprintf("images:\n  test/shell:1:\n    command: [/bin/sh, -c, '\"$0\"; exit $?', %q]\n", testserverbin.Build(t))+sameUser())
	dataDir := filepath.Join(t.TempDir(), "data")
	addr := freeAddr(t)
	first := startBerth(t, bin, addr, dataDir, cfgFile)
	sm, rt, _ := sdkClients("http://" + addr)
	deployEndpoint(t, sm, "test/shell:1", "", 1)
	invokeExpect(t, rt, "e", "x")

	shells := modelPIDs(t, first.Process.Pid)
	if len(shells) != 1 {
		t.Fatalf("model processes of berth: %v", shells)
	}
	servers := modelPIDs(t, shells[0])
	if len(servers) != 1 {
		t.Fatalf("children of the shell %d: %v", shells[0], servers)
	}
	t.Cleanup(func() { syscall.Kill(servers[0], syscall.SIGKILL) })

	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	waitExited(t, 10*time.Second, append(shells, servers...))

	startBerth(t, bin, addr, dataDir, cfgFile)
	waitInService(t, sm, "e")
	invokeExpect(t, rt, "e", "x")
}
