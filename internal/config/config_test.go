package config

import (
	"strings"
	"testing"
	"time"
)

func TestServerSection(t *testing.T) {
	cfg := Default()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if err := Parse(&cfg, []byte("server:\n  body_timeout: 5s\n  progress_timeout: 1m\n  max_connections: 100\n")); err != nil {
		t.Fatal(err)
	}
	if cfg.Server.BodyTimeout != 5*time.Second || cfg.Server.ProgressTimeout != time.Minute || cfg.Server.MaxConnections != 100 ||
		cfg.Server.ReadHeaderTimeout != Default().Server.ReadHeaderTimeout {
		t.Errorf("parsed: %+v", cfg.Server)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"server:\n  write_timeout: 0s\n", "write_timeout"},
		{"server:\n  idle_timeout: -1s\n", "idle_timeout"},
		{"server:\n  max_connections: -1\n", "max_connections"},
	} {
		cfg := Default()
		if err := Parse(&cfg, []byte(bad.yaml)); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want an error naming %s", bad.yaml, err, bad.want)
		}
	}
	if err := Parse(&cfg, []byte("server:\n  max_conections: 1\n")); err == nil {
		t.Error("a misspelt key was accepted")
	}
}
