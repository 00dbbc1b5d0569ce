package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWarnsWorldReadableSecrets: a config file that holds access keys and
// that any user (a model process among them) can read draws a warning
// that says how to fix it; a private one does not.
func TestWarnsWorldReadableSecrets(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "berth.yaml")
	yaml := "auth:\n  credentials:\n    - access_key_id: AKIDX\n      secret_access_key: s3cr3t\n"
	for _, tc := range []struct {
		mode os.FileMode
		warn bool
	}{{0o644, true}, {0o600, false}, {0o640, false}} {
		if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(file, tc.mode); err != nil {
			t.Fatal(err)
		}
		var logs bytes.Buffer
		cfg, err := loadServeConfig(file, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Auth.Credentials) != 1 {
			t.Fatalf("credentials = %v", cfg.Auth.Credentials)
		}
		if got := strings.Contains(logs.String(), "chmod 600 "+file); got != tc.warn {
			t.Errorf("mode %v: warned %v, want %v; logs: %s", tc.mode, got, tc.warn, logs.String())
		}
	}
	// Without credentials in it the file holds no secret.
	if err := os.WriteFile(file, []byte("region: us-east-1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	if _, err := loadServeConfig(file, slog.New(slog.NewTextHandler(&logs, nil))); err != nil {
		t.Fatal(err)
	}
	if logs.Len() != 0 {
		t.Errorf("warned about a config without credentials: %s", logs.String())
	}
}
