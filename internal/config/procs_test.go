package config

import (
	"slices"
	"strings"
	"testing"
)

func TestModelDataAndRunAsUser(t *testing.T) {
	cfg := Default()
	if cfg.Runtime.RunAsUser != "nobody" || len(cfg.ModelData.AllowedFileDirs) != 0 {
		t.Errorf("defaults: run_as_user %q, allowed_file_dirs %v", cfg.Runtime.RunAsUser, cfg.ModelData.AllowedFileDirs)
	}
	yaml := "runtime: {run_as_user: \"1000:1000\"}\nmodel_data:\n  allowed_file_dirs: [/srv/models, /data/m]\n"
	if err := Parse(&cfg, []byte(yaml)); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Runtime.RunAsUser != "1000:1000" || !slices.Equal(cfg.ModelData.AllowedFileDirs, []string{"/srv/models", "/data/m"}) {
		t.Errorf("parsed %+v %+v", cfg.Runtime, cfg.ModelData)
	}
	for yaml, want := range map[string]string{
		"model_data: {allowed_file_dirs: [models]}": "absolute",
		"runtime: {run_as_user: \"\"}":              "run_as_user",
	} {
		cfg := Default()
		if err := Parse(&cfg, []byte(yaml)); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate = %v, want an error about %s", yaml, err, want)
		}
	}
}
