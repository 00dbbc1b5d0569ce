// Package store persists berth's resources (models, endpoint configs,
// endpoints and later jobs and queues) in SQLite in the data dir. Every
// write is committed with synchronous=FULL before it returns, so whatever
// the API acknowledged survives a kill -9.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Errors returned by Store methods.
var (
	ErrNotFound = errors.New("resource not found")
	ErrExists   = errors.New("resource already exists")
)

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
	db *sql.DB
}

const schema = `
CREATE TABLE IF NOT EXISTS resources (
	kind     TEXT NOT NULL,
	name     TEXT NOT NULL COLLATE NOCASE,
	created  INTEGER NOT NULL,
	modified INTEGER NOT NULL,
	status   TEXT NOT NULL DEFAULT '',
	body     BLOB NOT NULL,
	PRIMARY KEY (kind, name)
);`

// Open opens (creating if needed) the database file berth.db in dir.
func Open(ctx context.Context, dir string) (*Store, error) {
	path := filepath.Join(dir, "berth.db")
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open state database: %w", err)
	}
	// One connection serialises writers; control-plane traffic is small
	// and this rules out SQLITE_BUSY between our own connections.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("create schema in %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Create inserts a new record; it fails with ErrExists if the kind already
// has a record of that name.
func (s *Store) Create(ctx context.Context, rec Record) error {
	_, err := s.db.ExecContext(ctx,
		`INSERT INTO resources (kind, name, created, modified, status, body) VALUES (?, ?, ?, ?, ?, ?)`,
		rec.Kind, rec.Name, rec.Created.UnixNano(), rec.Modified.UnixNano(), rec.Status, rec.Body)
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE constraint failed") || strings.Contains(err.Error(), "PRIMARY KEY") {
			return fmt.Errorf("%s %q: %w", rec.Kind, rec.Name, ErrExists)
		}
		return fmt.Errorf("insert %s %q: %w", rec.Kind, rec.Name, err)
	}
	return nil
}

// Get returns the record of the given kind and name.
func (s *Store) Get(ctx context.Context, kind, name string) (Record, error) {
	row := s.db.QueryRowContext(ctx,
		`SELECT kind, name, created, modified, status, body FROM resources WHERE kind = ? AND name = ?`, kind, name)
	rec, err := scan(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, fmt.Errorf("%s %q: %w", kind, name, ErrNotFound)
	}
	return rec, err
}

// Update reads a record, lets fn change it and writes it back in one
// transaction. If fn returns an error nothing is written.
func (s *Store) Update(ctx context.Context, kind, name string, fn func(*Record) error) (Record, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return Record{}, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	rec, err := scan(tx.QueryRowContext(ctx,
		`SELECT kind, name, created, modified, status, body FROM resources WHERE kind = ? AND name = ?`, kind, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Record{}, fmt.Errorf("%s %q: %w", kind, name, ErrNotFound)
	}
	if err != nil {
		return Record{}, err
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
	res, err := s.db.ExecContext(ctx, `DELETE FROM resources WHERE kind = ? AND name = ?`, kind, name)
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
	rows, err := s.db.QueryContext(ctx,
		`SELECT kind, name, created, modified, status, body FROM resources WHERE kind = ? ORDER BY name`, kind)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", kind, err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		rec, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	return out, rows.Err()
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
