package app_test

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // raw access to berth.db, as an operator would have

	"github.com/berth-io/berth/internal/app"
)

// TestRestartRefusesUnreadableEndpoint deploys an endpoint, stops berth,
// and renames a field in its stored body, as a berth that renamed it
// without a migration would find it. berth then refuses to start, naming
// the endpoint and the field, and the record survives byte for byte; once
// the body is repaired the endpoint comes back and serves.
func TestRestartRefusesUnreadableEndpoint(t *testing.T) {
	ctx := context.Background()
	cfg := testConfig(t, t.TempDir())
	s := startServer(t, cfg)
	s.deploy(t, "kept", nil, "", 1)
	if err := s.app.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(cfg.DataDir, "berth.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	body := func() string {
		t.Helper()
		var b string
		if err := db.QueryRow(`SELECT body FROM resources WHERE kind = 'endpoint' AND name = 'kept'`).Scan(&b); err != nil {
			t.Fatalf("stored endpoint: %v", err)
		}
		return b
	}
	rename := func(from, to string) {
		t.Helper()
		res, err := db.Exec(`UPDATE resources SET body = replace(body, ?, ?) WHERE kind = 'endpoint' AND name = 'kept'`, from, to)
		if n, _ := res.RowsAffected(); err != nil || n != 1 {
			t.Fatalf("edit stored endpoint: %v", err)
		}
	}
	rename(`"Deployed":`, `"DeployedV0":`)
	edited := body()
	if !strings.Contains(edited, `"DeployedV0":`) {
		t.Fatalf("stored body has no Deployed field: %s", edited)
	}

	for attempt := 0; attempt < 2; attempt++ {
		a, err := app.New(ctx, cfg, app.Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
		if err != nil {
			t.Fatal(err)
		}
		err = a.Start(ctx)
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		a.Shutdown(sctx)
		cancel()
		if err == nil || !strings.Contains(err.Error(), `stored endpoint "kept": json: unknown field "DeployedV0"`) {
			t.Fatalf("start over an unreadable endpoint: %v", err)
		}
		if got := body(); got != edited {
			t.Fatalf("stored endpoint changed by a refused start:\n%s\nwas\n%s", got, edited)
		}
	}

	rename(`"DeployedV0":`, `"Deployed":`)
	s = startServer(t, cfg)
	s.waitInService(t, "kept")
	if _, err := s.invoke(t, "kept", "hello"); err != nil {
		t.Fatalf("invoke after repair: %v", err)
	}
}
