package app_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/berth-io/berth/internal/app"
	"github.com/berth-io/berth/internal/config"
	"github.com/berth-io/berth/internal/modelserver/builtin"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWarnsImageOutOfReach: run as root, berth warns at start-up about an
// image whose script sits in a directory the model processes' user cannot
// pass through (a clone in root's home), instead of letting every
// endpoint of it fail later with "Permission denied".
func TestWarnsImageOutOfReach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: model processes change user only when berth is root")
	}
	// A berth with run_as_user sets the process's umask to 077; files
	// later tests write for the model processes' user need the usual one.
	umask := syscall.Umask(0o022)
	syscall.Umask(umask)
	t.Cleanup(func() { syscall.Umask(umask) })
	base, err := os.MkdirTemp("", "berth-reach-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(base, "home") // like /root: private
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(home, "serve.py")
	if err := os.WriteFile(script, []byte("print()\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, filepath.Join(base, "data"))
	cfg.Runtime.RunAsUser = config.Default().Runtime.RunAsUser
	cfg.Images = map[string]config.Image{
		"private:1": {Command: []string{"/usr/bin/python3", script}},
		"public:1":  {Command: []string{"/bin/sh", "-c", "exit 0"}},
	}
	var logs lockedBuffer
	ctx := context.Background()
	a, err := app.New(ctx, cfg, app.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Frameworks: builtin.Frameworks()})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		a.Shutdown(ctx)
	}()
	out := logs.String()
	if !strings.Contains(out, "image private:1 will fail to start") || !strings.Contains(out, script) {
		t.Errorf("no warning naming image private:1 and %s; logs:\n%s", script, out)
	}
	if strings.Contains(out, "image public:1") {
		t.Errorf("warning for an image within reach; logs:\n%s", out)
	}
}
