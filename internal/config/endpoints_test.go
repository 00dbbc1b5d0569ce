package config

import (
	"strings"
	"testing"
	"time"
)

func TestEndpointsSettleWait(t *testing.T) {
	if got := Default().Endpoints.SettleWait; got != 5*time.Second {
		t.Errorf("default settle_wait = %s, want 5s", got)
	}
	for _, tc := range []struct {
		yaml    string
		want    time.Duration
		wantErr string
	}{
		{"endpoints: {settle_wait: 0s}", 0, ""},
		{"endpoints: {settle_wait: 12s}", 12 * time.Second, ""},
		{"endpoints: {settle_wait: 30s}", 30 * time.Second, ""},
		{"endpoints: {settle_wait: 31s}", 0, "settle_wait"},
		{"endpoints: {settle_wait: -1s}", 0, "settle_wait"},
	} {
		cfg := Default()
		err := Parse(&cfg, []byte(tc.yaml))
		if err == nil {
			err = cfg.Validate()
		}
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want one naming %s", tc.yaml, err, tc.wantErr)
			}
			continue
		}
		if err != nil || cfg.Endpoints.SettleWait != tc.want {
			t.Errorf("%s: settle_wait = %s, err = %v", tc.yaml, cfg.Endpoints.SettleWait, err)
		}
	}
}

func TestEndpointsReplaceUnhealthyAfter(t *testing.T) {
	if got := Default().Endpoints.ReplaceUnhealthyAfter; got != 2*time.Minute {
		t.Errorf("default replace_unhealthy_after = %s, want 2m", got)
	}
	for _, tc := range []struct {
		yaml    string
		want    time.Duration
		wantErr bool
	}{
		{"endpoints: {replace_unhealthy_after: 30s}", 30 * time.Second, false},
		{"endpoints: {replace_unhealthy_after: 1s}", time.Second, false},
		{"endpoints: {replace_unhealthy_after: 0s}", 0, true},
		{"endpoints: {replace_unhealthy_after: 500ms}", 0, true},
	} {
		cfg := Default()
		err := Parse(&cfg, []byte(tc.yaml))
		if err == nil {
			err = cfg.Validate()
		}
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), "replace_unhealthy_after") {
				t.Errorf("%s: err = %v, want one naming replace_unhealthy_after", tc.yaml, err)
			}
			continue
		}
		if err != nil || cfg.Endpoints.ReplaceUnhealthyAfter != tc.want {
			t.Errorf("%s: replace_unhealthy_after = %s, err = %v", tc.yaml, cfg.Endpoints.ReplaceUnhealthyAfter, err)
		}
	}
}
