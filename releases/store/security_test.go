package store_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// Servers started together on one empty Postgres database must all come up: the first creates
// the schema, the others wait for it instead of colliding in Postgres' catalog.
func TestConcurrentOpensOnEmptyPostgresAllSucceed(t *testing.T) {
	pg := os.Getenv("SAGEDEPLOY_TEST_POSTGRES")
	if pg == "" {
		t.Skip("SAGEDEPLOY_TEST_POSTGRES is not set: no PostgreSQL to race migrations on (scripts/test.sh starts one)")
	}
	for round := range 3 {
		u := freshPostgresSchema(t, pg)
		const servers = 6
		errs := make([]error, servers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				s, err := store.Open(context.Background(), store.Config{DatabaseURL: u})
				if err == nil {
					s.Close()
				}
				errs[i] = err
			}()
		}
		close(start)
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d: server %d of %d failed to open the empty database: %v", round, i+1, servers, err)
			}
		}
	}
}

// A data dir others can read, and database files created with the umask's mode, are fixed at
// open: dir 0700, files 0600, each change logged as a warning.
func TestOpenFixesDataDirAndDatabasePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	s := open(t, store.Config{DataDir: dir, Logger: log})
	mustEnv(t, s, releases.Environment{Name: "dev", Kind: "local"})
	wantMode(t, dir, 0o700)
	for _, name := range []string{store.SQLiteFile, store.SQLiteFile + "-wal"} {
		wantMode(t, filepath.Join(dir, name), 0o600)
	}
	s.Close()

	// Someone loosens them; the next start tightens them again and says so.
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Join(dir, store.SQLiteFile), 0o644)
	logs.Reset()
	open(t, store.Config{DataDir: dir, Logger: log})
	wantMode(t, dir, 0o700)
	wantMode(t, filepath.Join(dir, store.SQLiteFile), 0o600)
	if n := strings.Count(logs.String(), "permissions fixed"); n != 2 || !strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("want two warnings (dir and database file), got %d:\n%s", n, logs.String())
	}
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %s; want %s", path, got, want)
	}
}

// On both backends: a revoked token claims nothing, revoking a token puts what its agent took
// back in the queue, and a password change ends the user's sessions while a no-op update does not.
func TestRevocationAndPasswordChangeOnEveryBackend(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store, clk *clock) {
		devProd(t, s)
		deploy(t, s, "dev", 1, 1)
		deploy(t, s, "dev", 2, 1)
		a, err := s.CreateToken(ctx, store.Token{Environment: "dev", Name: "a", Hash: "hash-a"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := s.CreateToken(ctx, store.Token{Environment: "dev", Name: "b", Hash: "hash-b"})
		cmd, _, err := s.CreateCommand(ctx, releases.Command{Kind: releases.CommandRestore, Environment: "dev", Model: "abalone", Version: 1, RequestedBy: "alice"},
			releases.Release{Environment: "dev", Model: "abalone", Kind: releases.KindRestore, Version: v(1), Trigger: releases.Trigger{Type: "user", User: "alice"}}, false)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.ClaimCommandAs(ctx, "dev", a.ID); err != nil || got == nil || got.ID != cmd.ID {
			t.Fatalf("token a claimed %+v, %v", got, err)
		}
		_, requeued, err := s.RevokeTokenRequeue(ctx, a.ID)
		if err != nil || len(requeued) != 1 || requeued[0].ID != cmd.ID || requeued[0].State != store.CommandQueued {
			t.Fatalf("revoke a: requeued %+v, %v", requeued, err)
		}
		if got, err := s.ClaimCommandAs(ctx, "dev", a.ID); got != nil || releases.ErrorCode(err) != releases.EUNAUTHORIZED {
			t.Fatalf("revoked token a claimed %+v, %v; want nothing, unauthorized", got, err)
		}
		if got, err := s.ClaimCommandAs(ctx, "dev", b.ID); err != nil || got == nil || got.ID != cmd.ID {
			t.Fatalf("token b claimed %+v, %v; want the requeued command", got, err)
		}

		if err := s.CreateUser(ctx, store.User{Name: "carol", PasswordHash: "h1", Role: store.RoleDeployer}); err != nil {
			t.Fatal(err)
		}
		se := store.Session{IDHash: "s1", Username: "carol", CSRF: "c", CreatedAt: clk.Now(), ExpiresAt: clk.Now().Add(time.Hour)}
		if err := s.CreateSession(ctx, se); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateUser(ctx, store.User{Name: "carol", PasswordHash: "h1", Role: store.RoleDeployer}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Session(ctx, "s1"); err != nil {
			t.Fatalf("an update that changed nothing ended the session: %v", err)
		}
		if err := s.UpdateUser(ctx, store.User{Name: "carol", PasswordHash: "h2", Role: store.RoleDeployer}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Session(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("carol's session after a password change: %v; want it ended", err)
		}
	})
}
