// Command dashboard benchmarks the release server at scale: it seeds a store with a year of
// history (100,000 releases across 10 environments × 50 models, 5 events each), records the
// latest release of every component through the real API with integration tokens, signs in to
// the dashboard as a user, and measures the latency of the pages people open — overview,
// timeline (first page, a deep page, filtered by environment and by component) and component
// page — through the real HTTP server, then the rate at which the API ingests release events.
//
//	go run ./bench/dashboard                          # SQLite in a temporary directory
//	go run ./bench/dashboard -database-url postgres://user:pw@127.0.0.1:5432/db
//	SAGEDEPLOY_TEST_POSTGRES=postgres://... go run ./bench/dashboard   # SQLite, then Postgres
//
// With Postgres, everything goes into a fresh schema that is dropped at the end (-keep keeps it).
// It is a program, not a test: `go test ./...` never runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type options struct {
	releases     int
	environments int
	models       int
	events       int
	requests     int
	warmup       int
	ingestTime   time.Duration
	ingestConns  int
	databaseURL  string
	keep         bool
	targetP95    time.Duration // SQLite
	targetPG     time.Duration // PostgreSQL
	cpuprofile   string
}

func main() {
	var o options
	flag.IntVar(&o.releases, "releases", 100_000, "releases of history to seed")
	flag.IntVar(&o.environments, "environments", 10, "environments (at most 10)")
	flag.IntVar(&o.models, "models", 50, "models, each a component in every environment (at most 50)")
	flag.IntVar(&o.events, "events", 5, "progress events per seeded release")
	flag.IntVar(&o.requests, "requests", 200, "measured requests per page, one after another")
	flag.IntVar(&o.warmup, "warmup", 10, "unmeasured requests per page before those")
	flag.DurationVar(&o.ingestTime, "ingest", 5*time.Second, "how long to send release events for the ingest rate")
	flag.IntVar(&o.ingestConns, "ingest-clients", 8, "concurrent deployers sending events during the ingest run")
	flag.StringVar(&o.databaseURL, "database-url", "", "also run against this PostgreSQL server (default $SAGEDEPLOY_TEST_POSTGRES), in a fresh schema")
	flag.BoolVar(&o.keep, "keep", false, "keep the SQLite directory and the Postgres schema")
	flag.DurationVar(&o.targetP95, "target", 15*time.Millisecond, "p95 latency target of a dashboard page on SQLite")
	flag.DurationVar(&o.targetPG, "target-postgres", 25*time.Millisecond, "p95 latency target of a dashboard page on PostgreSQL")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the page measurements (SQLite run) to this file")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: go run ./bench/dashboard [flags]\n\n"+
			"Seeds a release store with history, then measures dashboard page latency (p50/p95) and the\n"+
			"event ingest rate through the real release server on 127.0.0.1.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if o.environments < 1 || o.environments > len(envNames) || o.models < 1 || o.models > len(modelNames) ||
		o.releases < 0 || o.events < 1 || o.requests < 1 || o.ingestConns < 1 {
		fmt.Fprintf(os.Stderr, "dashboard bench: need 1..%d environments, 1..%d models, events >= 1, requests >= 1, ingest-clients >= 1\n",
			len(envNames), len(modelNames))
		os.Exit(2)
	}
	if o.databaseURL == "" {
		o.databaseURL = os.Getenv("SAGEDEPLOY_TEST_POSTGRES")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	load0 := loadAvg()
	var results []backendResult
	backends := []string{"sqlite"}
	if o.databaseURL != "" {
		backends = append(backends, "postgres")
	}
	for _, b := range backends {
		r, err := runBackend(ctx, o, b)
		if err != nil {
			fmt.Fprintf(os.Stderr, "dashboard bench (%s): %v\n", b, err)
			os.Exit(1)
		}
		results = append(results, r)
	}
	report(os.Stdout, o, started, load0, results)
}

// logf prints progress to stderr, so that stdout holds only the results.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
