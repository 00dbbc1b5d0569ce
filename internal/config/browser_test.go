package config

import "testing"

func TestValidateBrowser(t *testing.T) {
	for _, tc := range []struct {
		origins, hosts []string
		ok             bool
	}{
		{[]string{"https://app.example.com", "http://localhost:3000", "https://app.example.com/"}, []string{"berth.internal", "*.berth.internal", "10.0.0.5", "[fd00::1]", "fd00::2"}, true},
		{[]string{"*"}, nil, false},
		{[]string{"app.example.com"}, nil, false},
		{[]string{"https://app.example.com/path"}, nil, false},
		{[]string{"ftp://app.example.com"}, nil, false},
		{nil, []string{"berth.internal:7070"}, false},
		{nil, []string{"http://berth.internal"}, false},
		{nil, []string{"*"}, false},
		{nil, []string{"a..b"}, false},
	} {
		cfg := Default()
		cfg.CORS.AllowedOrigins, cfg.AllowedHosts = tc.origins, tc.hosts
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("origins %v hosts %v: %v", tc.origins, tc.hosts, err)
		}
	}
	cfg := Default()
	if err := Parse(&cfg, []byte("cors:\n  allowed_origins: [\"https://app.example.com\"]\nallowed_hosts: [berth.internal]\nauth:\n  credentials:\n    - {access_key_id: AKID, secret_access_key: s}\n")); err != nil {
		t.Fatal(err)
	}
	if len(cfg.CORS.AllowedOrigins) != 1 || len(cfg.AllowedHosts) != 1 || cfg.Auth.Credentials[0].SecretAccessKey != "s" {
		t.Errorf("parsed %+v %+v %+v", cfg.CORS, cfg.AllowedHosts, cfg.Auth)
	}
}
