package store_test

import (
	"context"
	"os"
	"sync"
	"testing"

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
