package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Before schema versions, the store opened berth.db with this DSN and
// created its one table with this statement (user_version stayed 0).
const (
	v0DSN    = "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	v0Schema = `
CREATE TABLE IF NOT EXISTS resources (
	kind     TEXT NOT NULL,
	name     TEXT NOT NULL COLLATE NOCASE,
	created  INTEGER NOT NULL,
	modified INTEGER NOT NULL,
	status   TEXT NOT NULL DEFAULT '',
	body     BLOB NOT NULL,
	PRIMARY KEY (kind, name)
);`
)

// v0Rows are written into a pre-version database by raw SQL.
var v0Rows = []Record{
	{Kind: "model", Name: "Churn-Model", Created: time.Unix(1700000000, 1), Modified: time.Unix(1700000000, 1), Body: []byte(`{"ModelName":"Churn-Model","PrimaryContainer":{"Image":"berth/xgboost"}}`)},
	{Kind: "endpoint", Name: "churn", Created: time.Unix(1700000100, 2), Modified: time.Unix(1700000200, 3), Status: "InService", Body: []byte(`{"EndpointName":"churn","EndpointConfigName":"churn-cfg"}`)},
}

// rawDB opens berth.db in dir without the store, as older code or an
// operator would.
func rawDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "berth.db")+v0DSN)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// writeV0Database creates the database the store wrote before schema
// versions, with v0Rows in it, and returns the table's stored DDL.
func writeV0Database(t *testing.T, dir string) string {
	t.Helper()
	db := rawDB(t, dir)
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, v0Schema); err != nil {
		t.Fatal(err)
	}
	for _, r := range v0Rows {
		if _, err := db.ExecContext(ctx, `INSERT INTO resources (kind, name, created, modified, status, body) VALUES (?, ?, ?, ?, ?, ?)`,
			r.Kind, r.Name, r.Created.UnixNano(), r.Modified.UnixNano(), r.Status, r.Body); err != nil {
			t.Fatal(err)
		}
	}
	if v := userVersion(t, db); v != 0 {
		t.Fatalf("fresh database has user_version %d", v)
	}
	ddl := tableSQL(t, db, "resources")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return ddl
}

func userVersion(t *testing.T, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func tableSQL(t *testing.T, db *sql.DB, table string) string {
	t.Helper()
	var ddl string
	err := db.QueryRow(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&ddl)
	if errors.Is(err, sql.ErrNoRows) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return ddl
}

// checkV0Rows fails unless every row of v0Rows is in s unchanged.
func checkV0Rows(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	for _, want := range v0Rows {
		got, err := s.Get(ctx, want.Kind, want.Name)
		if err != nil {
			t.Fatalf("get %s %s: %v", want.Kind, want.Name, err)
		}
		if got.Kind != want.Kind || got.Name != want.Name || got.Status != want.Status || string(got.Body) != string(want.Body) ||
			!got.Created.Equal(want.Created) || !got.Modified.Equal(want.Modified) {
			t.Errorf("got %+v, want %+v", got, want)
		}
	}
}

func TestOpenMigratesPreVersionDatabase(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	oldDDL := writeV0Database(t, dir)

	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatalf("open a database written before schema versions: %v", err)
	}
	if v := userVersion(t, s.w); v != schemaVersion() {
		t.Errorf("user_version after open = %d, want %d", v, schemaVersion())
	}
	if ddl := tableSQL(t, s.w, "resources"); ddl != oldDDL {
		t.Errorf("resources table changed:\n%s\nwas:\n%s", ddl, oldDDL)
	}
	checkV0Rows(t, s)
	list, err := s.List(ctx, "model")
	if err != nil || len(list) != 1 {
		t.Fatalf("list models: %v, %v", list, err)
	}
	// The case-insensitive primary key still holds for old rows.
	dup := v0Rows[0]
	dup.Name = strings.ToLower(dup.Name)
	if err := s.Create(ctx, dup); !errors.Is(err, ErrExists) {
		t.Errorf("create over an old row: %v, want ErrExists", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// A second open finds nothing to do.
	s, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkV0Rows(t, s)
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	newer := schemaVersion() + 1
	db := rawDB(t, dir)
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, newer)); err != nil {
		t.Fatal(err)
	}
	db.Close()

	_, err = Open(ctx, dir)
	var sv *SchemaVersionError
	if !errors.As(err, &sv) || sv.Found != newer || sv.Supported != schemaVersion() {
		t.Fatalf("open a newer database: %v, want a SchemaVersionError", err)
	}
	want := fmt.Sprintf("database schema version %d is newer than this berth supports (%d); use a newer berth", newer, schemaVersion())
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if v := userVersion(t, rawDB(t, dir)); v != newer {
		t.Errorf("refused database has user_version %d, want %d left alone", v, newer)
	}
}

// laterSteps stand for future migrations: a new indexed table (two
// statements in one SQL step) and a Go step that rewrites stored bodies.
func laterSteps(fail error) []migration {
	steps := append([]migration(nil), migrations[:1]...)
	return append(steps,
		migration{version: 2, name: "queue table", sql: `
CREATE TABLE queue (id INTEGER PRIMARY KEY, endpoint TEXT NOT NULL, due INTEGER NOT NULL);
CREATE INDEX queue_due ON queue (endpoint, due);`},
		migration{version: 3, name: "rename EndpointConfigName", fn: func(ctx context.Context, tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE resources SET body = replace(body, '"EndpointConfigName"', '"ConfigName"') WHERE kind = 'endpoint'`); err != nil {
				return err
			}
			return fail
		}},
	)
}

func TestMigrationsRunInOrder(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	writeV0Database(t, dir)
	s, err := open(ctx, dir, laterSteps(nil), 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := userVersion(t, s.w); v != 3 {
		t.Errorf("user_version %d, want 3", v)
	}
	if tableSQL(t, s.w, "queue") == "" {
		t.Error("step 2 did not create its table")
	}
	var indexes int
	if err := s.w.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'queue_due'`).Scan(&indexes); err != nil || indexes != 1 {
		t.Errorf("step 2 did not run its second statement: %d indexes, %v", indexes, err)
	}
	ep, err := s.Get(ctx, "endpoint", "churn")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"EndpointName":"churn","ConfigName":"churn-cfg"}`; string(ep.Body) != want {
		t.Errorf("step 3 made %s, want %s", ep.Body, want)
	}
}

func TestFailedMigrationChangesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	oldDDL := writeV0Database(t, dir)

	boom := errors.New("boom")
	_, err := open(ctx, dir, laterSteps(boom), 2)
	if !errors.Is(err, boom) {
		t.Fatalf("open with a failing step: %v, want it to wrap the step's error", err)
	}
	if !strings.Contains(err.Error(), "step 3") {
		t.Errorf("error %q does not name the failing step", err)
	}

	db := rawDB(t, dir)
	if v := userVersion(t, db); v != 0 {
		t.Errorf("user_version %d after a failed migration, want 0", v)
	}
	if ddl := tableSQL(t, db, "queue"); ddl != "" {
		t.Errorf("table of step 2 is there after a failed migration: %s", ddl)
	}
	if ddl := tableSQL(t, db, "resources"); ddl != oldDDL {
		t.Errorf("resources table changed: %s", ddl)
	}
	db.Close()

	// Untouched, the database still opens with the real steps.
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	checkV0Rows(t, s)
}

func TestMalformedMigrationsRefused(t *testing.T) {
	ctx := context.Background()
	cases := map[string][]migration{
		"gap":      {migrations[0], {version: 3, name: "x", sql: "SELECT 1"}},
		"empty":    {migrations[0], {version: 2, name: "x"}},
		"both":     {migrations[0], {version: 2, name: "x", sql: "SELECT 1", fn: func(context.Context, *sql.Tx) error { return nil }}},
		"reversed": {{version: 2, name: "x", sql: "SELECT 1"}, migrations[0]},
	}
	for name, steps := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := open(ctx, dir, steps, 0); err == nil || !strings.Contains(err.Error(), "malformed") {
				t.Fatalf("open: %v, want a malformed-migration error", err)
			}
		})
	}
	// The shipped list is well-formed, which Open relies on.
	if _, err := Open(ctx, t.TempDir()); err != nil {
		t.Fatal(err)
	}
}

func TestErrExistsByErrorCode(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	rec := Record{Kind: "model", Name: "m", Created: now, Modified: now, Body: []byte(`{}`)}
	if err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, rec); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate create: %v, want ErrExists", err)
	}
	// Another constraint is not a duplicate: a NULL body breaks NOT NULL.
	nobody := Record{Kind: "model", Name: "n", Created: now, Modified: now}
	err = s.Create(ctx, nobody)
	var se *sqlite.Error
	if errors.Is(err, ErrExists) || !errors.As(err, &se) || se.Code() != sqlite3.SQLITE_CONSTRAINT_NOTNULL {
		t.Fatalf("create with a NULL body: %v, want a NOT NULL error that is not ErrExists", err)
	}
	// UNIQUE (not only PRIMARY KEY) violations count too, for later tables.
	if _, err := s.w.ExecContext(ctx, `CREATE TEMP TABLE u (x TEXT UNIQUE)`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO u VALUES ('a')`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO u VALUES ('a')`); !isDuplicate(err) {
		t.Fatalf("unique violation %v not recognised", err)
	}
	if isDuplicate(nil) || isDuplicate(errors.New("UNIQUE constraint failed")) {
		t.Fatal("isDuplicate matched something that is not an SQLite constraint error")
	}
}

// TestOpenV0Fixture opens testdata/v0-berth.db, a database written by the
// store before schema versions (as of commit 9aa4601): its Open, then
// Create of the three records below, an Update of the endpoint that set
// its status again, and Close.
func TestOpenV0Fixture(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join("testdata", "v0-berth.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "berth.db"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	db := rawDB(t, dir)
	if v := userVersion(t, db); v != 0 {
		t.Fatalf("fixture has user_version %d, want 0", v)
	}
	oldDDL := tableSQL(t, db, "resources")
	db.Close()

	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatalf("open the fixture: %v", err)
	}
	defer s.Close()
	if v := userVersion(t, s.w); v != schemaVersion() {
		t.Errorf("user_version %d after open, want %d", v, schemaVersion())
	}
	if ddl := tableSQL(t, s.w, "resources"); ddl != oldDDL {
		t.Errorf("resources table changed:\n%s\nwas:\n%s", ddl, oldDDL)
	}
	at := time.Unix(1764288000, 123456789)
	for _, want := range []Record{
		{Kind: "model", Name: "Churn-Model", Created: at, Modified: at, Body: []byte(`{"ModelName":"Churn-Model","PrimaryContainer":{"Image":"berth/xgboost","ModelDataUrl":"s3://models/churn/model.tar.gz"},"ExecutionRoleArn":"arn:aws:iam::000000000000:role/berth"}`)},
		{Kind: "endpoint-config", Name: "churn-cfg", Created: at.Add(time.Second), Modified: at.Add(time.Second), Body: []byte(`{"EndpointConfigName":"churn-cfg","ProductionVariants":[{"VariantName":"AllTraffic","ModelName":"Churn-Model","InitialInstanceCount":1,"InstanceType":"ml.m5.large"}]}`)},
		{Kind: "endpoint", Name: "churn", Created: at.Add(2 * time.Second), Modified: at.Add(3 * time.Second), Status: "InService", Body: []byte(`{"EndpointName":"churn","EndpointConfigName":"churn-cfg"}`)},
	} {
		got, err := s.Get(ctx, want.Kind, strings.ToUpper(want.Name))
		if err != nil {
			t.Fatalf("get %s %s: %v", want.Kind, want.Name, err)
		}
		if got.Name != want.Name || got.Status != want.Status || string(got.Body) != string(want.Body) ||
			!got.Created.Equal(want.Created) || !got.Modified.Equal(want.Modified) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	}
}

// schemaVersion is the schema version this binary writes.
func schemaVersion() int { return len(migrations) }
