package main

import (
	"log/slog"
	"os"

	"github.com/berth-io/berth/internal/config"
)

// warnExposedSecrets warns when the config file at path, which holds
// secret access keys, can be read by every user of the host. Model
// processes are among them (runtime.run_as_user, "nobody" by default):
// a model's code that read the file could sign requests to berth's API
// with the keys, which its environment is kept free of for that reason.
// A file written with the usual umask (cat > berth.yaml) is world-readable.
func warnExposedSecrets(logger *slog.Logger, path string) {
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o004 == 0 {
		return
	}
	logger.Warn("the config file holds secret access keys (auth.credentials) and every user of this host can read it, model processes included; make it private: chmod 600 "+path,
		"config", path, "mode", fi.Mode().Perm().String())
}

// loadServeConfig returns the defaults overridden by the config file at
// path (none when path is ""), warning when the file exposes secrets.
func loadServeConfig(path string, logger *slog.Logger) (config.Config, error) {
	cfg := config.Default()
	if path == "" {
		return cfg, nil
	}
	if err := config.LoadFile(&cfg, path); err != nil {
		return cfg, err
	}
	if len(cfg.Auth.Credentials) > 0 {
		warnExposedSecrets(logger, path)
	}
	return cfg, nil
}
