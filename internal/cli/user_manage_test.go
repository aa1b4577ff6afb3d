package cli

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// databases are the --data-dir/--database-url flags of each backend to run against: SQLite
// always, Postgres (a fresh schema) when SAGEDEPLOY_TEST_POSTGRES is set.
func databases(t *testing.T) map[string][]string {
	out := map[string][]string{"sqlite": {"--data-dir", t.TempDir()}}
	base := os.Getenv("SAGEDEPLOY_TEST_POSTGRES")
	if base == "" {
		t.Log("Postgres not tested: set SAGEDEPLOY_TEST_POSTGRES=postgres://user@host:5432/db to run against it too")
		return out
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "sdcli_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("create schema on SAGEDEPLOY_TEST_POSTGRES: %v", err)
	}
	t.Cleanup(func() { db.Exec("DROP SCHEMA " + schema + " CASCADE"); db.Close() })
	u, _ := url.Parse(base)
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	out["postgres"] = []string{"--data-dir", t.TempDir(), "--database-url", u.String()}
	return out
}

func openFlags(t *testing.T, flags []string) *store.Store {
	t.Helper()
	cfg := store.Config{}
	for i := 0; i+1 < len(flags); i += 2 {
		switch flags[i] {
		case "--data-dir":
			cfg.DataDir = flags[i+1]
		case "--database-url":
			cfg.DatabaseURL = flags[i+1]
		}
	}
	st, err := store.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestServerUserCommandsRoundTrip: `server user add|list|role|password|remove` on each database;
// every change ends the user's open sessions.
func TestServerUserCommandsRoundTrip(t *testing.T) {
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) {
			run := func(stdin string, args ...string) (string, string, int) {
				return runCLI(t, stdin, append(args, db...)...)
			}
			run("", "server", "user", "add", "admin", "--role", "admin")
			if out, errOut, code := run("s3cret-password-1\n", "server", "user", "add", "carol", "--role", "deployer", "--password-stdin"); code != 0 {
				t.Fatalf("user add: %s %s", out, errOut)
			}
			st := openFlags(t, db)
			session := func(id string) {
				now := time.Now()
				if err := st.CreateSession(context.Background(), store.Session{IDHash: id, Username: "carol", CSRF: "x", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			ended := func(id string) bool {
				_, _, err := st.Session(context.Background(), id)
				return err != nil
			}

			session("s1")
			out, _, _ := run("", "server", "user", "list", "-o", "json")
			var users []store.UserSummary
			if err := json.Unmarshal([]byte(out), &users); err != nil || len(users) != 2 || users[1].Name != "carol" || users[1].Sessions != 1 {
				t.Fatalf("user list: %s (%v)", out, err)
			}
			if out, errOut, code := run("", "server", "user", "role", "carol", "viewer"); code != 0 || !strings.Contains(out, "carol is now viewer; 1 session(s) ended") || !ended("s1") {
				t.Fatalf("user role: %d %s %s", code, out, errOut)
			}
			session("s2")
			out, _, code := run("", "server", "user", "password", "carol")
			if code != 0 || !strings.Contains(out, "shown only this once") || !ended("s2") {
				t.Fatalf("user password: %d %s", code, out)
			}
			newPW := strings.TrimSpace(strings.Split(out, "\n")[2])
			u, _ := st.User(context.Background(), "carol")
			if u.Role != store.RoleViewer || bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(newPW)) != nil {
				t.Fatalf("carol after role and password: role %s, password printed %q does not match", u.Role, newPW)
			}
			session("s3")
			if out, _, code := run("", "server", "user", "signout", "carol"); code != 0 || !strings.Contains(out, "1 session(s) ended") || !ended("s3") {
				t.Fatalf("user signout: %d %s", code, out)
			}
			session("s4")
			if out, _, code := run("", "server", "user", "remove", "carol"); code != 0 || !strings.Contains(out, "Removed carol; 1 session(s) ended") || !ended("s4") {
				t.Fatalf("user remove: %d %s", code, out)
			}
			if _, errOut, code := run("", "server", "user", "remove", "admin"); code == 0 || !strings.Contains(errOut, "last admin") {
				t.Fatalf("removing the last admin: %d %s", code, errOut)
			}
			if _, errOut, code := run("", "server", "user", "role", "carol", "admin"); code == 0 || !strings.Contains(errOut, "user carol does not exist") {
				t.Fatalf("role of a removed user: %d %s", code, errOut)
			}
		})
	}
}

// TestServerWebhookCommands: `server webhook add|list|test|remove`: the secret is printed once
// and signs the test event the receiver gets.
func TestServerWebhookCommands(t *testing.T) {
	dir := t.TempDir()
	got := make(chan *http.Request, 1)
	bodies := make(chan []byte, 1)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- r
		bodies <- b
	}))
	defer recv.Close()
	runCLI(t, "", "server", "env", "add", "prod", "--kind", "sagemaker", "--region", "eu-west-1", "--data-dir", dir)
	out, errOut, code := runCLI(t, "", "server", "webhook", "add", recv.URL, "--name", "ops", "--env", "prod", "--events", "failed,rolled_back", "-o", "json", "--data-dir", dir)
	if code != 0 {
		t.Fatalf("webhook add: %s", errOut)
	}
	var nw server.NewWebhook
	if err := json.Unmarshal([]byte(out), &nw); err != nil || !strings.HasPrefix(nw.Secret, "whsec_") || len(nw.Events) != 2 {
		t.Fatalf("webhook add output: %s (%v)", out, err)
	}
	if fi, err := os.Stat(dir + "/" + server.WebhookKeyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the webhook secrets key must be a 0600 file in the data dir: %v %v", fi, err)
	}
	out, _, _ = runCLI(t, "", "server", "webhook", "list", "--data-dir", dir)
	if !strings.Contains(out, nw.ID) || !strings.Contains(out, "release.failed, release.rolled_back") || strings.Contains(out, nw.Secret) {
		t.Fatalf("webhook list: %s", out)
	}
	out, errOut, code = runCLI(t, "", "server", "webhook", "test", nw.ID, "--data-dir", dir)
	if code != 0 || !strings.Contains(out, "HTTP 200") {
		t.Fatalf("webhook test: %d %s %s", code, out, errOut)
	}
	r, body := <-got, <-bodies
	if err := server.VerifySignature([]byte(nw.Secret), r.Header.Get(server.SignatureHeader), body, time.Now(), time.Minute); err != nil {
		t.Fatalf("the test event's signature: %v", err)
	}
	if out, _, code := runCLI(t, "", "server", "webhook", "remove", nw.ID, "--data-dir", dir); code != 0 || !strings.Contains(out, "Removed webhook") {
		t.Fatalf("webhook remove: %s", out)
	}
	if _, errOut, code := runCLI(t, "", "server", "webhook", "add", "https://x.example", "--events", "deployed", "--data-dir", dir); code == 0 || !strings.Contains(errOut, "not known") {
		t.Fatalf("unknown event kind: %d %s", code, errOut)
	}
}
