// Package store persists berth's resources (models, endpoint configs,
// endpoints and later jobs and queues) in SQLite in the data dir.
//
// Durability: every write goes through one writer connection and is
// committed with synchronous=FULL before it returns, so whatever the API
// acknowledged survives a kill -9. Reads (Get, List) go through a small
// pool of query-only connections beside the writer; the database is in WAL
// mode, so readers never block the writer or each other, and a read that
// starts after a write returned sees it (read-your-writes).
//
// # Schema versions
//
// The schema version is SQLite's PRAGMA user_version. Open runs every
// migration the database has not seen, in order, in one transaction: a
// failing step leaves the database exactly as it was. A database whose
// version is newer than the last migration this binary knows is refused,
// because an older berth would misread or overwrite what a newer one wrote.
// Version 1 is the original resources table; databases written before
// versions existed (user_version 0, the table already there) move to 1
// without change.
//
// To change the schema, append a step to migrations with the next number;
// never edit or reorder a step that has shipped, since databases in the
// field already ran it. A step is SQL (several statements may be separated
// by semicolons) or a Go function over the migration's *sql.Tx, for what
// SQL cannot express, such as rewriting the JSON bodies of a kind when a
// stored field is renamed:
//
//	{version: 2, name: "async queue", sql: `
//		CREATE TABLE async_requests (...);
//		CREATE INDEX async_requests_due ON async_requests (endpoint, due);`},
//	{version: 3, name: "rename Foo to Bar in endpoints", fn: renameFooToBar},
//
// Then add a case to the migration tests that opens a database at the
// previous version with rows in it and checks what the step made of them.
// The control plane decodes stored endpoints strictly at start-up (an
// unknown field is an error), so a renamed or retyped field without a
// migration stops start-up instead of silently losing data.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"time"

	sqlite "modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors returned by Store methods.
var (
	ErrNotFound = errors.New("resource not found")
	ErrExists   = errors.New("resource already exists")
)

// SchemaVersionError refuses a database written by a newer berth.
type SchemaVersionError struct {
	Found     int // the database's user_version
	Supported int // the newest version this binary knows
}

func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this berth supports (%d); use a newer berth", e.Found, e.Supported)
}

// Record is one stored resource: a kind ("model", "endpoint", …), a name
// unique within the kind regardless of case (as SageMaker names are), a
// status, and the resource itself as a JSON body.
type Record struct {
	Kind     string
	Name     string
	Created  time.Time
	Modified time.Time
	Status   string
	Body     []byte
}

// Store is a SQLite-backed resource store, safe for concurrent use.
type Store struct {
	w *sql.DB // the only writer: one connection
	r *sql.DB // query-only readers
}

// migration is one numbered schema step; exactly one of sql and fn is set.
type migration struct {
	version int
	name    string
	sql     string
	fn      func(ctx context.Context, tx *sql.Tx) error
}

// migrations are the schema steps in order; version i+1 is at index i.
var migrations = []migration{
	// The table as it was before schema versions, byte for byte, so that
	// on a database from then the step is a no-op and only the version
	// moves to 1.
	{version: 1, name: "resources table", sql: `
CREATE TABLE IF NOT EXISTS resources (
	kind     TEXT NOT NULL,
	name     TEXT NOT NULL COLLATE NOCASE,
	created  INTEGER NOT NULL,
	modified INTEGER NOT NULL,
	status   TEXT NOT NULL DEFAULT '',
	body     BLOB NOT NULL,
	PRIMARY KEY (kind, name)
);`},
	// Transform job checkpoints: one row per input object whose output is
	// written whole, so a restarted job skips it.
	{version: 2, name: "transform job progress", sql: `
CREATE TABLE transform_progress (
	job    TEXT NOT NULL COLLATE NOCASE,
	object TEXT NOT NULL,
	PRIMARY KEY (job, object)
);`},
}

// Open opens (creating if needed) the database file berth.db in dir and
// brings its schema to the current version.
func Open(ctx context.Context, dir string) (*Store, error) {
	return open(ctx, dir, migrations, readPoolSize())
}

func readPoolSize() int { return max(4, runtime.GOMAXPROCS(0)) }

// open is Open with the migrations and the number of read connections
// given; readers 0 makes reads share the writer's connection.
func open(ctx context.Context, dir string, steps []migration, readers int) (*Store, error) {
	path := filepath.Join(dir, "berth.db")
	// _txlock=immediate: a transaction takes the write lock when it
	// begins, so a read-modify-write never has to upgrade its lock.
	w, err := sql.Open("sqlite", "file:"+path+"?_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)")
	if err != nil {
		return nil, fmt.Errorf("open state database %s: %w", path, err)
	}
	// One writer connection serialises writes in this process, which
	// rules out SQLITE_BUSY between our own connections.
	w.SetMaxOpenConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w, steps); err != nil {
		w.Close()
		return nil, fmt.Errorf("state database %s: %w", path, err)
	}
	s := &Store{w: w, r: w}
	if readers > 0 {
		// The file is already in WAL mode (a persistent setting the
		// writer made), so these never block the writer; query_only
		// makes any write through them an error.
		r, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_pragma=query_only(1)")
		if err != nil {
			w.Close()
			return nil, fmt.Errorf("open state database %s for reading: %w", path, err)
		}
		r.SetMaxOpenConns(readers)
		r.SetMaxIdleConns(readers)
		if err := r.PingContext(ctx); err != nil {
			r.Close()
			w.Close()
			return nil, fmt.Errorf("open state database %s for reading: %w", path, err)
		}
		s.r = r
	}
	return s, nil
}

// migrate runs the steps the database has not seen, and sets its version,
// in one transaction.
func migrate(ctx context.Context, db *sql.DB, steps []migration) error {
	for i, m := range steps {
		if m.version != i+1 || (m.sql == "") == (m.fn == nil) {
			return fmt.Errorf("migration %d (%q) is malformed: want version %d and exactly one of sql or fn", m.version, m.name, i+1)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer tx.Rollback()
	var have int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&have); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	want := len(steps)
	if have > want {
		return &SchemaVersionError{Found: have, Supported: want}
	}
	if have == want {
		return nil
	}
	for _, m := range steps[have:] {
		var err error
		if m.fn != nil {
			err = m.fn(ctx, tx)
		} else {
			_, err = tx.ExecContext(ctx, m.sql)
		}
		if err != nil {
			return fmt.Errorf("migrate schema from version %d to %d: step %d (%s): %w", have, want, m.version, m.name, err)
		}
	}
	// PRAGMA takes no parameters; want is an int we computed.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, want)); err != nil {
		return fmt.Errorf("set schema version %d: %w", want, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migration to schema version %d: %w", want, err)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	var err error
	if s.r != s.w {
		err = s.r.Close()
	}
	// The writer last: the last connection to close checkpoints the WAL.
	return errors.Join(err, s.w.Close())
}

// isDuplicate reports whether err is a primary-key or unique violation.
func isDuplicate(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
		return true
	}
	return false
}

// Create inserts a new record; it fails with ErrExists if the kind already
// has a record of that name.
func (s *Store) Create(ctx context.Context, rec Record) error {
	_, err := s.w.ExecContext(ctx,
		`INSERT INTO resources (kind, name, created, modified, status, body) VALUES (?, ?, ?, ?, ?, ?)`,
		rec.Kind, rec.Name, rec.Created.UnixNano(), rec.Modified.UnixNano(), rec.Status, rec.Body)
	if isDuplicate(err) {
		return fmt.Errorf("%s %q: %w", rec.Kind, rec.Name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("insert %s %q: %w", rec.Kind, rec.Name, err)
	}
	return nil
}

const selectRecord = `SELECT kind, name, created, modified, status, body FROM resources WHERE kind = ? AND name = ?`

// Get returns the record of the given kind and name.
func (s *Store) Get(ctx context.Context, kind, name string) (Record, error) {
	rec, err := scan(s.r.QueryRowContext(ctx, selectRecord, kind, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, fmt.Errorf("%s %q: %w", kind, name, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("get %s %q: %w", kind, name, err)
	}
	return rec, nil
}

// Update reads a record, lets fn change it and writes it back in one
// transaction. If fn returns an error nothing is written.
func (s *Store) Update(ctx context.Context, kind, name string, fn func(*Record) error) (Record, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return Record{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	rec, err := scan(tx.QueryRowContext(ctx, selectRecord, kind, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, fmt.Errorf("%s %q: %w", kind, name, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("read %s %q: %w", kind, name, err)
	}
	if err := fn(&rec); err != nil {
		return Record{}, err
	}
	if _, err := tx.ExecContext(ctx,
		`UPDATE resources SET modified = ?, status = ?, body = ? WHERE kind = ? AND name = ?`,
		rec.Modified.UnixNano(), rec.Status, rec.Body, kind, name); err != nil {
		return Record{}, fmt.Errorf("update %s %q: %w", kind, name, err)
	}
	if err := tx.Commit(); err != nil {
		return Record{}, fmt.Errorf("commit %s %q: %w", kind, name, err)
	}
	return rec, nil
}

// Delete removes a record; it fails with ErrNotFound if there is none.
func (s *Store) Delete(ctx context.Context, kind, name string) error {
	res, err := s.w.ExecContext(ctx, `DELETE FROM resources WHERE kind = ? AND name = ?`, kind, name)
	if err != nil {
		return fmt.Errorf("delete %s %q: %w", kind, name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s %q: %w", kind, name, ErrNotFound)
	}
	return nil
}

// List returns every record of a kind, ordered by name.
func (s *Store) List(ctx context.Context, kind string) ([]Record, error) {
	rows, err := s.r.QueryContext(ctx,
		`SELECT kind, name, created, modified, status, body FROM resources WHERE kind = ? ORDER BY name`, kind)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		rec, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", kind, err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scan(row scanner) (Record, error) {
	var rec Record
	var created, modified int64
	if err := row.Scan(&rec.Kind, &rec.Name, &created, &modified, &rec.Status, &rec.Body); err != nil {
		return Record{}, err
	}
	rec.Created = time.Unix(0, created)
	rec.Modified = time.Unix(0, modified)
	return rec, nil
}

// MarkObjectDone records that a transform job finished an input object
// (its output is written whole). Marking it again is not an error.
func (s *Store) MarkObjectDone(ctx context.Context, job, object string) error {
	if _, err := s.w.ExecContext(ctx, `INSERT OR IGNORE INTO transform_progress (job, object) VALUES (?, ?)`, job, object); err != nil {
		return fmt.Errorf("checkpoint transform job %q object %q: %w", job, object, err)
	}
	return nil
}

// DoneObjects returns the input objects a transform job has finished.
func (s *Store) DoneObjects(ctx context.Context, job string) (map[string]bool, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT object FROM transform_progress WHERE job = ?`, job)
	if err != nil {
		return nil, fmt.Errorf("read checkpoints of transform job %q: %w", job, err)
	}
	defer rows.Close()
	done := map[string]bool{}
	for rows.Next() {
		var o string
		if err := rows.Scan(&o); err != nil {
			return nil, fmt.Errorf("read checkpoints of transform job %q: %w", job, err)
		}
		done[o] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read checkpoints of transform job %q: %w", job, err)
	}
	return done, nil
}

// ClearProgress forgets a transform job's checkpoints (the job ended).
func (s *Store) ClearProgress(ctx context.Context, job string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM transform_progress WHERE job = ?`, job); err != nil {
		return fmt.Errorf("clear checkpoints of transform job %q: %w", job, err)
	}
	return nil
}
