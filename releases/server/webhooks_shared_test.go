package server_test

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
	"sync"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// sharedDatabases are store configs of one database two servers can share: a SQLite data dir, and
// a fresh Postgres schema when SAGEDEPLOY_TEST_POSTGRES is set.
func sharedDatabases(t *testing.T) map[string]store.Config {
	out := map[string]store.Config{"sqlite": {DataDir: t.TempDir()}}
	base := os.Getenv("SAGEDEPLOY_TEST_POSTGRES")
	if base == "" {
		return out
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "sdsrv_" + hex.EncodeToString(b)
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
	out["postgres"] = store.Config{DatabaseURL: u.String()}
	return out
}

// TestTwoServersOnOneDatabaseDeliverEachEventOnce: two servers with the same key deliver from one
// outbox at the same time; the receiver accepts every event exactly once.
func TestTwoServersOnOneDatabaseDeliverEachEventOnce(t *testing.T) {
	for name, cfg := range sharedDatabases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			key := webhookKey(t)
			var mu sync.Mutex
			seen := map[string]int{}
			got := make(chan struct{}, 200)
			recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				var n store.Notification
				json.Unmarshal(b, &n)
				mu.Lock()
				seen[n.ID]++
				mu.Unlock()
				// Answer in full before telling the test, which then stops the servers: an answer
				// cut off by their shutdown would (rightly) be sent again.
				w.Header().Set("Content-Length", "0")
				w.WriteHeader(http.StatusOK)
				w.(http.Flusher).Flush()
				got <- struct{}{}
			}))
			defer recv.Close()

			var stores []*store.Store
			var servers []*server.Server
			for i := range 2 {
				st, err := store.Open(ctx, cfg)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				srv, err := server.New(server.Options{Store: st, Logger: servertest.TestLogger(t),
					Webhooks: server.WebhookOptions{Key: key, Poll: 5 * time.Millisecond}})
				if err != nil {
					t.Fatal(err)
				}
				defer srv.Close()
				stores, servers = append(stores, st), append(servers, srv)
				if i == 0 {
					if err := st.PutEnvironment(ctx, releases.Environment{Name: "dev", Kind: "local"}); err != nil {
						t.Fatal(err)
					}
					if _, _, err := server.CreateWebhook(ctx, st, key, server.WebhookSpec{URL: recv.URL, Events: "drift.detected"}, "test"); err != nil {
						t.Fatal(err)
					}
				}
			}
			const events = 60
			for i := range events {
				if _, err := stores[i%2].NotifyDrift(ctx, "dev", "abalone", "changed", nil); err != nil {
					t.Fatal(err)
				}
			}
			for range events {
				select {
				case <-got:
				case <-time.After(30 * time.Second):
					t.Fatal("the receiver did not get every event within 30s")
				}
			}
			for _, srv := range servers {
				srv.Close() // waits for the attempts in flight to be recorded
			}
			for _, st := range stores {
				ds, err := st.Deliveries(ctx, "", events+10)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range ds {
					if d.State != store.DeliveryDelivered || d.Attempts != 1 {
						t.Fatalf("delivery %s: %s after %d attempts, want delivered at the first", d.ID, d.State, d.Attempts)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(seen) != events {
				t.Fatalf("the receiver saw %d distinct events, want %d", len(seen), events)
			}
			for id, n := range seen {
				if n != 1 {
					t.Errorf("event %s delivered %d times", id, n)
				}
			}
		})
	}
}
