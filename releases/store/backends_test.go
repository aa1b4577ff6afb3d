package store_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases/store"
)

// clock is a settable time source for the store.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// backend is a fresh, empty database of one kind.
type backend struct {
	name string
	cfg  store.Config
}

// backends returns a fresh SQLite database always, and a fresh PostgreSQL schema when
// SAGEDEPLOY_TEST_POSTGRES points at a server.
func backends(t *testing.T) []backend {
	t.Helper()
	out := []backend{{name: "sqlite", cfg: store.Config{DataDir: t.TempDir()}}}
	if pg := os.Getenv("SAGEDEPLOY_TEST_POSTGRES"); pg != "" {
		out = append(out, backend{name: "postgres", cfg: store.Config{DatabaseURL: freshPostgresSchema(t, pg)}})
	}
	return out
}

// freshPostgresSchema creates an empty schema for one test and returns a URL whose search_path
// points at it; the schema is dropped when the test ends.
func freshPostgresSchema(t *testing.T, base string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	schema := "sdtest_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("SAGEDEPLOY_TEST_POSTGRES=%s: %v", base, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		t.Fatalf("create schema on SAGEDEPLOY_TEST_POSTGRES=%s: %v", base, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE")
		db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse SAGEDEPLOY_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// eachBackend runs fn as a subtest on every backend with a store opened on a fresh database.
func eachBackend(t *testing.T, fn func(t *testing.T, s *store.Store, clk *clock)) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			clk := newClock()
			cfg := b.cfg
			cfg.Now = clk.Now
			s := open(t, cfg)
			fn(t, s, clk)
		})
	}
}

func open(t *testing.T, cfg store.Config) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
