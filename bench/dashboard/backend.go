package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/pprof"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// backendResult is everything measured on one database.
type backendResult struct {
	backend, location string
	seeded, events    int
	seedTime          time.Duration
	live              liveResult
	pages             []pageResult
	ingest            ingestResult
}

// runBackend seeds a fresh database of one kind, serves it and measures it.
func runBackend(ctx context.Context, o options, backend string) (res backendResult, err error) {
	res.backend = backend
	cfg, cleanup, err := freshDatabase(ctx, o, backend)
	if err != nil {
		return res, err
	}
	defer cleanup()
	st, err := store.Open(ctx, cfg)
	if err != nil {
		return res, err
	}
	defer st.Close()
	res.location = st.Location()
	logf("%s: %s", backend, res.location)

	envs := environments(o.environments)
	for _, e := range envs {
		if err := server.EnsureEnvironment(ctx, st, e); err != nil {
			return res, err
		}
	}
	models := modelNames[:o.models]
	now := time.Now()
	logf("seeding %d releases with %d events each (%d environments × %d models)", o.releases, o.events, len(envs), len(models))
	t0 := time.Now()
	if err := seed(ctx, st, newHistory(envs, models, o.events), o.releases, now.Add(-2*time.Minute)); err != nil {
		return res, err
	}
	res.seedTime, res.seeded, res.events = time.Since(t0), o.releases, o.releases*o.events
	logf("seeded in %s (%.0f releases/s)", res.seedTime.Round(time.Millisecond), float64(o.releases)/res.seedTime.Seconds())

	srv, err := server.New(server.Options{Store: st, PasswordCost: bcrypt.MinCost,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		return res, err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 30 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	base := "http://" + ln.Addr().String()

	b := &bench{o: o, base: base, st: st, envs: envs, models: models, tokens: map[string]string{}}
	if err := b.setUp(ctx); err != nil {
		return res, err
	}
	logf("recording the latest release of each of %d components through the API", len(envs)*len(models))
	if res.live, err = b.liveReleases(ctx); err != nil {
		return res, err
	}
	if err := b.leavePending(ctx, 3); err != nil {
		return res, err
	}
	if err := b.signIn(ctx); err != nil {
		return res, err
	}
	logf("measuring dashboard pages, %d requests each", o.requests)
	if o.cpuprofile != "" && backend == "sqlite" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return res, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, err
		}
		res.pages, err = b.measurePages(ctx)
		pprof.StopCPUProfile()
		logf("CPU profile of the page measurements: %s", o.cpuprofile)
	} else {
		res.pages, err = b.measurePages(ctx)
	}
	if err != nil {
		return res, err
	}
	logf("measuring event ingest for %s with %d clients", o.ingestTime, o.ingestConns)
	if res.ingest, err = b.ingest(ctx); err != nil {
		return res, err
	}
	return res, nil
}

// freshDatabase returns the configuration of an empty database and what removes it.
func freshDatabase(ctx context.Context, o options, backend string) (store.Config, func(), error) {
	if backend == "sqlite" {
		dir, err := os.MkdirTemp("", "sagedeploy-bench-dashboard-")
		if err != nil {
			return store.Config{}, nil, err
		}
		if o.keep {
			logf("keeping %s", dir)
			return store.Config{DataDir: dir}, func() {}, nil
		}
		return store.Config{DataDir: dir}, func() { os.RemoveAll(dir) }, nil
	}
	u, err := url.Parse(o.databaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return store.Config{}, nil, fmt.Errorf("-database-url %q is not a postgres:// URL", o.databaseURL)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "sdbench_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", o.databaseURL)
	if err != nil {
		return store.Config{}, nil, err
	}
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		return store.Config{}, nil, fmt.Errorf("create schema %s on %s: %w", schema, u.Redacted(), err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	cleanup := func() {
		defer db.Close()
		if o.keep {
			logf("keeping schema %s", schema)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			logf("drop schema %s: %v", schema, err)
		}
	}
	return store.Config{DatabaseURL: u.String()}, cleanup, nil
}

var errStatus = errors.New("unexpected status")
