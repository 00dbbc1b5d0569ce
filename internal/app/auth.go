package app

import (
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/berth-io/berth/internal/awsapi/sigv4"
	"github.com/berth-io/berth/internal/config"
)

// ErrNoCredentials: berth would listen beyond loopback with no credentials
// configured, so anyone who can reach it could run code on the host.
var ErrNoCredentials = errors.New("no credentials configured")

// newVerifier applies the authentication mode rules: with credentials,
// every request must be signed with one; without, any key works on
// loopback only, unless the operator insists (Insecure).
func newVerifier(cfg config.Config, logger *slog.Logger) (*sigv4.Verifier, error) {
	if n := len(cfg.Auth.Credentials); n > 0 {
		creds := make([]sigv4.Credential, n)
		for i, c := range cfg.Auth.Credentials {
			creds[i] = sigv4.Credential{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey}
		}
		v, err := sigv4.New(creds, sigv4.Options{})
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		logger.Info("authentication on: requests must be signed (SigV4) with a configured access key", "access_keys", n)
		return v, nil
	}
	if isLoopback(cfg.Listen) {
		logger.Info("authentication off: no credentials configured, so any access key works; berth listens on loopback only. " +
			"Set auth.credentials in the config file, or BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY, to require signed requests")
		return nil, nil
	}
	if cfg.Auth.Insecure {
		logger.Warn("INSECURE: authentication off on a non-loopback address (--insecure): anyone who can reach "+cfg.Listen+
			" can deploy and run code on this host as berth's user. Configure credentials instead", "listen", cfg.Listen)
		return nil, nil
	}
	return nil, fmt.Errorf("refusing to listen on %s: %w, and anyone who can reach that address could run code on this host. "+
		"Configure an access key pair, in the config file (auth: {credentials: [{access_key_id: ..., secret_access_key: ...}]}) "+
		"or with BERTH_ACCESS_KEY_ID and BERTH_SECRET_ACCESS_KEY; or listen on loopback (--listen 127.0.0.1:7070); "+
		"or pass --insecure (BERTH_INSECURE=1) to accept unsigned requests anyway", cfg.Listen, ErrNoCredentials)
}

// isLoopback reports whether the listen address is a loopback address or
// "localhost" (an empty host means every interface).
func isLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
