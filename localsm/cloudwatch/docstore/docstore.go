// Package docstore keeps the local SageMaker's monitoring resources (CloudWatch alarms, Application
// Auto Scaling targets and policies) across restarts: JSON documents by kind and key in one SQLite
// file, each write durable before the API answers.
package docstore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // pure-Go SQLite driver
)

// Store is an open document file. A nil *Store keeps nothing: every method is a no-op, so that
// services built without a data directory (unit tests) need no special case.
type Store struct {
	db *sql.DB
}

// Open opens (creating if needed) the document file at path.
func Open(ctx context.Context, path string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open monitoring store: %w", err)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open monitoring store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer at a time, as SQLite allows
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS documents (
		kind TEXT NOT NULL,
		key  TEXT NOT NULL,
		body TEXT NOT NULL,
		PRIMARY KEY (kind, key)
	)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("open monitoring store %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Load returns every document of a kind, by key.
func (s *Store) Load(ctx context.Context, kind string) (map[string][]byte, error) {
	out := map[string][]byte{}
	if s == nil {
		return out, nil
	}
	rows, err := s.db.QueryContext(ctx, "SELECT key, body FROM documents WHERE kind = ?", kind)
	if err != nil {
		return nil, fmt.Errorf("load %s documents: %w", kind, err)
	}
	defer rows.Close()
	for rows.Next() {
		var key, body string
		if err := rows.Scan(&key, &body); err != nil {
			return nil, fmt.Errorf("load %s documents: %w", kind, err)
		}
		out[key] = []byte(body)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load %s documents: %w", kind, err)
	}
	return out, nil
}

// Put writes a document, replacing one with the same kind and key.
func (s *Store) Put(ctx context.Context, kind, key string, body []byte) error {
	if s == nil {
		return nil
	}
	// A client that goes away must not leave the API's answer and the file disagreeing.
	ctx = context.WithoutCancel(ctx)
	if _, err := s.db.ExecContext(ctx, `INSERT INTO documents (kind, key, body) VALUES (?, ?, ?)
		ON CONFLICT (kind, key) DO UPDATE SET body = excluded.body`, kind, key, string(body)); err != nil {
		return fmt.Errorf("save %s %s: %w", kind, key, err)
	}
	return nil
}

// Delete removes documents of one kind; missing keys are not an error.
func (s *Store) Delete(ctx context.Context, kind string, keys ...string) error {
	if s == nil || len(keys) == 0 {
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete %s documents: %w", kind, err)
	}
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, "DELETE FROM documents WHERE kind = ? AND key = ?", kind, k); err != nil {
			tx.Rollback()
			return fmt.Errorf("delete %s %s: %w", kind, k, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete %s documents: %w", kind, err)
	}
	return nil
}

// Close closes the file.
func (s *Store) Close() error {
	if s == nil {
		return nil
	}
	return s.db.Close()
}
