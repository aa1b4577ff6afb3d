// Command serving benchmarks `sagedeploy local` serving the abalone XGBoost model (version 2)
// against the stack a user would otherwise run — SageMaker's XGBoost container as it serves:
// nginx in front of gunicorn with gevent workers, one per core, + Flask + Debian's
// python3-xgboost ("container"); the older, leaner baseline of gunicorn alone with sync workers
// ("python") — and against a bare Go net/http handler that answers a fixed body (the practical
// ceiling of an HTTP server on this machine). Missing Debian packages (wrk, nginx, gunicorn,
// python3-flask, python3-gevent, python3-xgboost) are installed with apt-get first.
//
// Each server is a separate process started on loopback and loaded alone, one after the other,
// by the same load generator (wrk, with the same connections, duration and request bodies).
// Before any load runs, the predictions of our server and of the Python stack are compared row
// by row over the whole abalone data set.
//
//	go run ./bench/serving                        # defaults: 3 rounds of 5 s runs, 16 connections
//	go run ./bench/serving -duration 20s -rounds 1 -connections 32
//	go run ./bench/serving -cpuprofile ours.pprof # ours in-process, CPU profile of its load runs
//	go run ./bench/serving -only ours,bare -rows 1 -cpuprofile ours.pprof -bare-cpuprofile bare.pprof
//
// It is a program, not a test: `go test ./...` never runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

type options struct {
	duration    time.Duration
	warmup      time.Duration
	connections int
	threads     int
	rows        []int
	rounds      int
	sagedeploy  string // prebuilt binary; empty builds ./cmd/sagedeploy
	logLevel    string // --log-level of `sagedeploy local`
	workers     int    // gunicorn workers
	workerClass string // gunicorn worker class
	cpuprofile  string // profile ours in-process during its load runs
	bareProfile string // profile the bare handler's first run
	only        []string
	keep        bool
	install     bool // apt-get install the Debian packages the baselines need
}

func main() {
	// Hidden mode: the bare handler, run by this program as a child process.
	if len(os.Args) > 1 && os.Args[1] == bareCommand {
		if err := serveBare(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bare server:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	var rows, only string
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "load duration of each run (one server, one body size)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each run")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of runs, servers taking turns; the median run of each server and body size is reported")
	flag.IntVar(&o.connections, "connections", 16, "concurrent keep-alive connections of the load generator")
	flag.IntVar(&o.threads, "threads", 1, "load generator threads (wrk -t); the load generator shares the machine with the server")
	flag.StringVar(&rows, "rows", "1,100", "comma-separated CSV rows per request body, one run each")
	flag.StringVar(&o.sagedeploy, "sagedeploy", "", "sagedeploy binary to run (default: go build ./cmd/sagedeploy into a temporary directory)")
	flag.StringVar(&o.logLevel, "log-level", "info", "--log-level of `sagedeploy local` (info, its default, logs control-plane calls and failed invocations; debug logs every invocation; the log goes to a file)")
	flag.IntVar(&o.workers, "python-workers", runtime.NumCPU(), "gunicorn workers of the gunicorn-only baseline (the container stack always runs one per core)")
	flag.StringVar(&o.workerClass, "python-worker-class", "sync", "gunicorn worker class of the gunicorn-only baseline (sync or gevent; the container stack always runs gevent)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "run ours in this process (localsm.Start, not the binary) and write a CPU profile of its load runs to this file")
	flag.StringVar(&o.bareProfile, "bare-cpuprofile", "", "write a CPU profile of the bare handler's first run to this file (compare with -cpuprofile's: go tool pprof -top -diff_base BARE OURS)")
	flag.StringVar(&only, "only", "ours,container,python,bare", "comma-separated servers to load: ours, container (nginx + gunicorn gevent, as SageMaker's XGBoost container), python (gunicorn alone), bare (predictions are always checked)")
	flag.BoolVar(&o.install, "install", true, "apt-get install the Debian packages the baselines and the load generator need when missing")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (server logs, data directory)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: go run ./bench/serving [flags]\n\n"+
			"Loads sagedeploy local, the Python stack as SageMaker's XGBoost container runs it (nginx + gunicorn\n"+
			"gevent + Flask + xgboost), gunicorn alone and a bare Go handler, one at a time, with wrk, and prints\n"+
			"requests/s, p50 and p99 of each and the ratios of ours to each.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if o.rounds < 1 || o.connections < 1 || o.threads < 1 || o.threads > o.connections || o.duration < time.Second {
		fmt.Fprintln(os.Stderr, "serving bench: need -rounds >= 1, -duration >= 1s, -connections >= -threads >= 1")
		os.Exit(2)
	}
	var err error
	if o.rows, err = parseRows(rows); err != nil {
		fmt.Fprintln(os.Stderr, "serving bench: -rows:", err)
		os.Exit(2)
	}
	for s := range strings.SplitSeq(only, ",") {
		switch s = strings.TrimSpace(s); s {
		case "ours", "container", "python", "bare":
			o.only = append(o.only, s)
		case "":
		default:
			fmt.Fprintf(os.Stderr, "serving bench: -only: unknown server %q (ours, container, python, bare)\n", s)
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "serving bench:", err)
		os.Exit(1)
	}
}

func parseRows(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		var n int
		if _, err := fmt.Sscanf(strings.TrimSpace(f), "%d", &n); err != nil || n < 1 || n > 4177 {
			return nil, fmt.Errorf("%q is not a row count between 1 and 4177", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no row counts")
	}
	return out, nil
}

func (o options) wants(server string) bool {
	for _, s := range o.only {
		if s == server {
			return true
		}
	}
	return false
}

// logf prints progress to stderr, so that stdout holds only the results.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
