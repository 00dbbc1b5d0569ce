package config

import "testing"

func TestRuntimeAPIFastPath(t *testing.T) {
	cfg := Default()
	if !cfg.RuntimeAPI.FastPath {
		t.Fatal("the fast path is off by default")
	}
	if err := Parse(&cfg, []byte("runtime_api:\n  fast_path: false\n")); err != nil {
		t.Fatal(err)
	}
	if cfg.RuntimeAPI.FastPath {
		t.Fatal("runtime_api.fast_path: false left the fast path on")
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := Parse(&cfg, []byte("runtime_api:\n  fastpath: false\n")); err == nil {
		t.Fatal("a misspelt key was accepted")
	}
}
