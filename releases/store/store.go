// Package store keeps the release server's state — environments, components, versions, releases
// with their events, agent commands, users, sessions, integration tokens, webhooks with their
// delivery outbox, and the audit log — in SQLite (default, pure Go, one file in the data dir) or
// PostgreSQL, with one schema and versioned migrations applied at open.
package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/sagedeploy/sagedeploy/releases"
	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// Errors the store's answers wrap; their messages name what was missing or in the way, so callers
// can show them to users as they are.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
	ErrExists   = errors.New("already exists")
	ErrInvalid  = errors.New("invalid")
)

// codedErr is a *releases.Error that also matches its store sentinel with errors.Is, so callers
// may branch on either.
type codedErr struct {
	kind error
	dom  *releases.Error
}

func (e *codedErr) Error() string   { return e.dom.Message }
func (e *codedErr) Unwrap() []error { return []error{e.kind, e.dom} }

// codeOf is the domain code of a store sentinel.
func codeOf(kind error) string {
	switch kind {
	case ErrNotFound:
		return releases.ENOTFOUND
	case ErrConflict, ErrExists:
		return releases.ECONFLICT
	case ErrInvalid:
		return releases.EINVALID
	}
	return releases.EINTERNAL
}

func errf(kind error, format string, args ...any) error {
	return &codedErr{kind: kind, dom: releases.Errorf(codeOf(kind), format, args...)}
}

// fromDomain gives a refusal of the release lifecycle its store sentinel too.
func fromDomain(err error) error {
	var de *releases.Error
	var ce *codedErr
	if !errors.As(err, &de) || errors.As(err, &ce) {
		return err
	}
	for _, kind := range []error{ErrNotFound, ErrConflict, ErrInvalid} {
		if codeOf(kind) == de.Code {
			return &codedErr{kind: kind, dom: de}
		}
	}
	return err
}

// Config says where the state lives.
type Config struct {
	// DatabaseURL, when it starts with postgres:// or postgresql://, selects PostgreSQL. Otherwise
	// the store is the SQLite file sagedeploy.db in DataDir.
	DatabaseURL string
	DataDir     string
	// Now is the clock; nil means time.Now. Tests set it to move time.
	Now func() time.Time
	// Logger gets the warnings of opening (permissions fixed); nil means slog.Default().
	Logger *slog.Logger
}

// Store is the release server's state. It is safe for concurrent use.
type Store struct {
	db      *sql.DB
	dialect dialect
	now     func() time.Time
	where   string
}

type dialect int

const (
	sqlite dialect = iota
	postgres
)

// SQLiteFile is the name of the SQLite database in the data dir.
const SQLiteFile = "sagedeploy.db"

// Open connects to the configured database and applies any migrations it lacks.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	u := cfg.DatabaseURL
	var s *Store
	switch {
	case strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://"):
		db, err := sql.Open("pgx", u)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", err)
		}
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(8)
		db.SetConnMaxIdleTime(5 * time.Minute)
		s = &Store{db: db, dialect: postgres, now: now, where: redactURL(u)}
	case u != "":
		return nil, fmt.Errorf("database URL %q is not supported: use postgres://user:password@host:5432/dbname, or leave it empty for SQLite in the data dir", redactURL(u))
	default:
		dir := cfg.DataDir
		if dir == "" {
			return nil, errors.New("no data dir given for the SQLite database: pass --data-dir or --database-url")
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create data dir %s: %w", dir, err)
		}
		if err := secureDataDir(dir, cmp.Or(cfg.Logger, slog.Default())); err != nil {
			return nil, err
		}
		path := filepath.Join(dir, SQLiteFile)
		// synchronous=FULL makes every acknowledged commit survive a kill -9 or power cut; WAL lets
		// readers proceed while one writer commits; immediate transactions take the write lock at
		// BEGIN so that two writers queue on busy_timeout instead of failing with SQLITE_BUSY.
		dsn := "file:" + path + "?_busy_timeout=15000&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_txlock=immediate"
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("open sqlite %s: %w", path, err)
		}
		db.SetMaxOpenConns(8)
		db.SetMaxIdleConns(8)
		s = &Store{db: db, dialect: sqlite, now: now, where: path}
	}
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("connect to database %s: %w", s.where, err)
	}
	if err := s.migrate(ctx); err != nil {
		s.db.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the database.
func (s *Store) Close() error { return s.db.Close() }

// Backend names the database kind: "sqlite" or "postgres".
func (s *Store) Backend() string {
	if s.dialect == postgres {
		return "postgres"
	}
	return "sqlite"
}

// Location says where the data lives (a file path, or the Postgres URL without its password).
func (s *Store) Location() string { return s.where }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Now is the store's clock, truncated to the microseconds the database keeps.
func (s *Store) Now() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 || at < scheme {
		return u
	}
	creds := u[scheme+3 : at]
	if i := strings.Index(creds, ":"); i >= 0 {
		return u[:scheme+3] + creds[:i] + ":***" + u[at:]
	}
	return u
}

// q rewrites a query written with ? placeholders for the dialect.
func (s *Store) q(query string) string {
	if s.dialect != postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// execer is what both *sql.DB and *sql.Tx offer.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type tx struct {
	s  *Store
	tx *sql.Tx
}

func (t *tx) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, t.s.q(query), args...)
}

func (t *tx) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, t.s.q(query), args...)
}

func (t *tx) row(ctx context.Context, query string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, t.s.q(query), args...)
}

// inTx runs fn in one transaction and commits it when fn returns nil.
func (s *Store) inTx(ctx context.Context, fn func(t *tx) error) error {
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	if err := fn(&tx{s: s, tx: sqlTx}); err != nil {
		_ = sqlTx.Rollback()
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (s *Store) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return s.db.ExecContext(ctx, s.q(query), args...)
}

func (s *Store) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return s.db.QueryContext(ctx, s.q(query), args...)
}

func (s *Store) row(ctx context.Context, query string, args ...any) *sql.Row {
	return s.db.QueryRowContext(ctx, s.q(query), args...)
}

// newID returns a time-ordered unique id (UUIDv7), so ids sort roughly by creation.
func newID() string {
	id, err := uuid.NewV7()
	if err != nil {
		return uuid.NewString()
	}
	return id.String()
}

func micros(t time.Time) int64 { return t.UTC().UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return micros(*t)
}

func timePtr(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// querier is what the store and a transaction offer for reading many rows.
type querier interface {
	query(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryAll runs query and scans every row with scan.
func queryAll[T any](ctx context.Context, db querier, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// scanString scans a one-column row of text, such as an id.
func scanString(r scanner) (string, error) {
	var s string
	err := r.Scan(&s)
	return s, err
}
