package control

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // pure-Go SQLite driver
)

// Document is one stored resource: its kind ("model", "endpoint", ...), its key within the kind
// and its JSON body.
type Document struct {
	Kind string
	Key  string
	Body []byte
}

// DocKey names a document to delete.
type DocKey struct{ Kind, Key string }

// Store persists the control plane's resources, one document per resource. Write must be
// atomic: after a crash either all of its changes are there or none.
type Store interface {
	Load(ctx context.Context) ([]Document, error)
	Write(ctx context.Context, puts []Document, deletes []DocKey) error
	Close() error
}

// SQLiteStore is the default Store: one SQLite file in WAL mode with synchronous=FULL, so that a
// write acknowledged to a client survives a crash or power loss, and a crash mid-write leaves the
// previous state intact.
type SQLiteStore struct {
	db *sql.DB
}

// OpenSQLite opens (creating if needed) the store at path.
func OpenSQLite(ctx context.Context, path string) (*SQLiteStore, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open state store: %w", err)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	// One connection: writes are serialised by the control plane anyway, and SQLite allows one
	// writer at a time.
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS resources (
		kind TEXT NOT NULL,
		key  TEXT NOT NULL,
		body TEXT NOT NULL,
		PRIMARY KEY (kind, key)
	)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		db.Close()
		return nil, fmt.Errorf("open state store %s: journal mode is %q, want wal (%v)", path, mode, err)
	}
	return &SQLiteStore{db: db}, nil
}

// Load implements Store.
func (s *SQLiteStore) Load(ctx context.Context) ([]Document, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT kind, key, body FROM resources ORDER BY kind, key")
	if err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	defer rows.Close()
	var docs []Document
	for rows.Next() {
		var d Document
		var body string
		if err := rows.Scan(&d.Kind, &d.Key, &body); err != nil {
			return nil, fmt.Errorf("load state: %w", err)
		}
		d.Body = []byte(body)
		docs = append(docs, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load state: %w", err)
	}
	return docs, nil
}

// Write implements Store.
func (s *SQLiteStore) Write(ctx context.Context, puts []Document, deletes []DocKey) (err error) {
	// The write must not be abandoned halfway because a client went away; it is short.
	ctx = context.WithoutCancel(ctx)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	for _, d := range puts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO resources (kind, key, body) VALUES (?, ?, ?)
			ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body`, d.Kind, d.Key, string(d.Body)); err != nil {
			return fmt.Errorf("save %s %s: %w", d.Kind, d.Key, err)
		}
	}
	for _, k := range deletes {
		if _, err := tx.ExecContext(ctx, "DELETE FROM resources WHERE kind = ? AND key = ?", k.Kind, k.Key); err != nil {
			return fmt.Errorf("delete %s %s: %w", k.Kind, k.Key, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// Close implements Store.
func (s *SQLiteStore) Close() error { return s.db.Close() }
