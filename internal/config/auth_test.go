package config

import (
	"strings"
	"testing"
)

func TestAuthAndMetricsConfig(t *testing.T) {
	cfg := Default()
	if cfg.Metrics.Path != "/metrics" || len(cfg.Auth.Credentials) != 0 {
		t.Fatalf("defaults: metrics %q, %d credentials", cfg.Metrics.Path, len(cfg.Auth.Credentials))
	}
	err := Parse(&cfg, []byte(`
auth:
  credentials:
    - {access_key_id: AKIDONE, secret_access_key: one}
    - access_key_id: AKIDTWO
      secret_access_key: two
metrics: {path: ""}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Auth.Credentials) != 2 || cfg.Auth.Credentials[1].SecretAccessKey != "two" || cfg.Metrics.Path != "" {
		t.Fatalf("parsed %+v, metrics %q", cfg.Auth, cfg.Metrics.Path)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"BERTH_ACCESS_KEY_ID": "AKIDENV", "BERTH_SECRET_ACCESS_KEY": "env"}
	if err := cfg.Auth.AddEnvCredentials(func(k string) string { return env[k] }); err != nil || len(cfg.Auth.Credentials) != 3 {
		t.Fatalf("env credentials: %v, %d", err, len(cfg.Auth.Credentials))
	}
	if err := cfg.Auth.AddEnvCredentials(func(k string) string { return map[string]string{"BERTH_ACCESS_KEY_ID": "x"}[k] }); err == nil {
		t.Error("a key id without a secret in the environment was accepted")
	}
	if err := Parse(&cfg, []byte("auth: {insecure: true}")); err == nil {
		t.Error("insecure was accepted from the file; only --insecure may set it")
	}

	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"missing secret", func(c *Config) { c.Auth.Credentials = []Credential{{AccessKeyID: "A"}} }, "secret_access_key"},
		{"duplicate key", func(c *Config) { c.Auth.Credentials = []Credential{{"A", "x"}, {"A", "y"}} }, "twice"},
		{"slash in key id", func(c *Config) { c.Auth.Credentials = []Credential{{"A/B", "x"}} }, "must not contain"},
		{"relative metrics path", func(c *Config) { c.Metrics.Path = "metrics" }, "metrics"},
		{"metrics on /ping", func(c *Config) { c.Metrics.Path = "/ping" }, "metrics"},
		{"metrics under /endpoints/", func(c *Config) { c.Metrics.Path = "/endpoints/m" }, "metrics"},
	} {
		c := Default()
		tc.edit(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}
