// Package localsmtest starts a local SageMaker for one test: on a free loopback port, in the
// test's temporary directory, with a silent logger, closed when the test ends.
package localsmtest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/localsm"
)

// Start starts a local SageMaker with opts; Addr, DataDir and Logger default to a free loopback
// port, t.TempDir() and a logger that drops everything. It fails the test if the server cannot
// start, and closes it (failing the test if that fails) in t.Cleanup.
func Start(t testing.TB, opts localsm.Options) *localsm.Server {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := localsm.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("start the local SageMaker (localsm.Start): %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("close local SageMaker: %v", err)
		}
	})
	return srv
}
