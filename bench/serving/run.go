package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sagedeploy/sagedeploy/examples/abalone"
)

// Targets of the issue: local serving against the Python stacks (at every body size) and
// against the bare handler (for one-row bodies: with more rows the model's work dominates,
// which the bare handler does not do).
const (
	targetVsPython = 5.0
	targetVsBare   = 0.9
)

func run(ctx context.Context, o options, out io.Writer) (err error) {
	started := time.Now()
	load0 := loadAvg()
	dir, err := os.MkdirTemp("", "sagedeploy-bench-serving-")
	if err != nil {
		return err
	}
	if o.keep {
		logf("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	rows, err := abalone.Rows()
	if err != nil {
		return err
	}
	bodies := map[int][]byte{}
	for _, n := range o.rows {
		bodies[n] = abalone.FeaturesCSV(rows[:n])
	}
	if o.install {
		if err := installPackages(ctx); err != nil {
			return err
		}
	}
	pyVersions, err := checkPython(ctx, o)
	if err != nil {
		return err
	}
	l, err := newLoader(o, dir)
	if err != nil {
		return err
	}
	modelPath, err := extractModel(dir)
	if err != nil {
		return err
	}

	var bin string
	starts := 0
	startOurs := func() (*server, error) {
		starts++
		dataDir := filepath.Join(dir, fmt.Sprintf("ours-data-%d", starts))
		if o.cpuprofile != "" {
			return startOursInProcess(ctx, o, dir, dataDir)
		}
		return startOursBinary(ctx, o, bin, dir, dataDir)
	}
	oursHow := "in this process (localsm.Start), for -cpuprofile"
	if o.cpuprofile == "" {
		oursHow = "`sagedeploy local` (" + o.sagedeploy + "), a separate process"
		if bin = o.sagedeploy; bin == "" {
			logf("building sagedeploy")
			if bin, err = buildSagedeploy(ctx, dir); err != nil {
				return err
			}
			oursHow = "`sagedeploy local` built from this checkout, a separate process"
		}
	}

	// Both servers up once, to compare predictions before any load.
	logf("starting sagedeploy local and deploying abalone v%d through the SageMaker API", modelVersion)
	ours, err := startOurs()
	if err != nil {
		return fmt.Errorf("ours: %w", err)
	}
	logf("starting the Python stack (gunicorn, %d %s workers)", o.workers, o.workerClass)
	python, err := startPython(ctx, o, dir, modelPath)
	if err != nil {
		ours.stop()
		return fmt.Errorf("python: %w", err)
	}
	logf("comparing predictions over all %d abalone rows", len(rows))
	check, err := comparePredictions(ctx, ours, python, rows)
	python.stop()
	answers, headers := map[int][]byte{}, map[int]http.Header{}
	for n, body := range bodies {
		if err != nil {
			break
		}
		answers[n], headers[n], err = invokeHeader(ctx, ours.url, body)
	}
	ours.stop()
	if err != nil {
		return fmt.Errorf("checking predictions failed, not benchmarking: %w", err)
	}

	var results []loadResult
	measure := func(srv *server, rowCounts []int) error {
		defer func() {
			if err := srv.stop(); err != nil {
				logf("stop %s: %v", srv.name, err)
			}
		}()
		for _, n := range rowCounts {
			logf("loading %s with %d-row bodies for %s", srv.name, n, o.duration)
			r, err := l.run(ctx, srv, n, bodies[n])
			if err != nil {
				return fmt.Errorf("%s, %d rows: %w", srv.name, n, err)
			}
			results = append(results, r)
		}
		return nil
	}
	var profile *os.File
	if o.cpuprofile != "" {
		if profile, err = os.Create(o.cpuprofile); err != nil {
			return err
		}
		defer profile.Close()
	}
	// Rounds take turns (ours, python, bare, ours, ...) so that a change in what else runs on
	// the machine weighs on every server alike; each server runs alone.
	for round := 1; round <= o.rounds; round++ {
		if o.rounds > 1 {
			logf("round %d of %d", round, o.rounds)
		}
		if o.wants("ours") {
			srv, err := startOurs()
			if err != nil {
				return fmt.Errorf("ours: %w", err)
			}
			if profile != nil {
				if err := pprof.StartCPUProfile(profile); err != nil {
					return err
				}
			}
			err = measure(srv, o.rows)
			if profile != nil {
				pprof.StopCPUProfile()
				profile = nil // one profile: the first round
				logf("CPU profile of ours under load: %s (go tool pprof -top %s)", o.cpuprofile, o.cpuprofile)
			}
			if err != nil {
				return err
			}
		}
		if o.wants("container") {
			srv, err := startContainer(ctx, o, dir, modelPath)
			if err != nil {
				return fmt.Errorf("container stack: %w", err)
			}
			if err := measure(srv, o.rows); err != nil {
				return err
			}
		}
		if o.wants("python") {
			srv, err := startPython(ctx, o, dir, modelPath)
			if err != nil {
				return fmt.Errorf("python: %w", err)
			}
			if err := measure(srv, o.rows); err != nil {
				return err
			}
		}
		if o.wants("bare") {
			for _, n := range o.rows {
				profile := ""
				if round == 1 && n == o.rows[0] {
					profile = o.bareProfile // one profile: the first run
				}
				srv, err := startBare(ctx, dir, answers[n], profile)
				if err != nil {
					return err
				}
				if err := sameAnswer(ctx, srv, bodies[n], answers[n], headers[n]); err != nil {
					srv.stop()
					return err
				}
				if err := measure(srv, []int{n}); err != nil {
					return err
				}
			}
		}
	}

	report(out, o, reportInfo{
		started: started, load0: load0, load1: loadAvg(), pyVersions: pyVersions, oursHow: oursHow,
		check: check, results: results,
	})
	return nil
}

// median returns the run of the median requests/s among runs (the lower middle one of an even
// count), with the lowest and highest requests/s.
func median(runs []loadResult) (mid loadResult, lo, hi float64) {
	sorted := slices.Clone(runs)
	slices.SortFunc(sorted, func(a, b loadResult) int { return cmp.Compare(a.RPS, b.RPS) })
	return sorted[(len(sorted)-1)/2], sorted[0].RPS, sorted[len(sorted)-1].RPS
}

type reportInfo struct {
	started      time.Time
	load0, load1 string
	pyVersions   string
	oursHow      string
	check        checkResult
	results      []loadResult
}

func report(out io.Writer, o options, ri reportInfo) {
	fmt.Fprintf(out, "bench/serving — abalone XGBoost model v%d, text/csv invocations on loopback\n\n", modelVersion)
	fmt.Fprintf(out, "machine:    %d cores (%s), %s, %s/%s, %s\n", runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH, ri.started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(out, "load avg:   %s before, %s after\n", ri.load0, ri.load1)
	fmt.Fprintf(out, "load:       %s, %d thread(s), %d connections, %s per run after a %s warm-up, %d round(s); one server at a time;\n",
		wrkVersion(), o.threads, o.connections, o.duration, o.warmup, o.rounds)
	fmt.Fprintf(out, "            the load generator and the server share the machine's %d cores\n", runtime.NumCPU())
	fmt.Fprintf(out, "ours:       %s, --log-level %s;\n", ri.oursHow, o.logLevel)
	fmt.Fprintf(out, "            endpoint made through the API: S3 upload, CreateModel, CreateEndpointConfig, CreateEndpoint, InService\n")
	fmt.Fprintf(out, "container:  as SageMaker's XGBoost container serves: nginx (%s, a worker per core, access log, keep-alive 3 s)\n", nginxVersion())
	fmt.Fprintf(out, "            -> unix socket -> gunicorn (%d gevent workers, log level info) + Flask + xgboost, the same app as python\n", runtime.NumCPU())
	fmt.Fprintf(out, "python:     gunicorn (%d %s workers) + Flask + xgboost, bench/serving/reference/app.py (%s);\n", o.workers, o.workerClass, ri.pyVersions)
	fmt.Fprintf(out, "            no nginx in front (the older, leaner baseline), one xgboost thread per worker\n")
	fmt.Fprintf(out, "bare:       Go net/http handler that reads the body and answers a fixed body (the same bytes and headers ours answers)\n")
	fmt.Fprintf(out, "check:      ours vs python over %d rows: all within %g (max |diff| %.3g, %d/%d identical text)\n\n",
		ri.check.Rows, tolerance, ri.check.MaxDiff, ri.check.Identical, ri.check.Rows)

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "rows/req\tserver\treq/s\t(min-max)\trows/s\tp50 ms\tp99 ms\tserver CPU\tCPU µs/req\twrk CPU\terrors\t")
	byKey := map[string]loadResult{}
	for _, n := range o.rows {
		for _, name := range []string{"ours", "container", "python", "bare"} {
			var runs []loadResult
			for _, r := range ri.results {
				if r.Rows == n && r.Server == name {
					runs = append(runs, r)
				}
			}
			if len(runs) == 0 {
				continue
			}
			r, lo, hi := median(runs)
			byKey[fmt.Sprint(name, n)] = r
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t(%.0f-%.0f)\t%.0f\t%.2f\t%.2f\t%.2f\t%.1f\t%.2f\t%d\t\n",
				n, name, r.RPS, lo, hi, r.RPS*float64(n), r.P50, r.P99, r.ServerCPU, r.ServerCPU*1e6/r.RPS, r.LoadCPU, r.Errors)
		}
	}
	tw.Flush()
	fmt.Fprintf(out, "(median of %d round(s) by req/s, with that run's latencies; server and wrk CPU: cores busy on average\n"+
		"during it; CPU µs/req: the server's CPU time per request, steadier than req/s on a busy machine)\n", o.rounds)

	fmt.Fprintln(out)
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ratio of req/s\trows/req\tratio\ttarget\tverdict\t")
	for _, c := range []struct {
		other  string
		target float64
		rows   int // the body size the target is for; 0: every size
	}{{"container", targetVsPython, 0}, {"python", targetVsPython, 0}, {"bare", targetVsBare, 1}} {
		for _, n := range o.rows {
			a, okA := byKey[fmt.Sprint("ours", n)]
			b, okB := byKey[fmt.Sprint(c.other, n)]
			if !okA || !okB || b.RPS == 0 {
				continue
			}
			ratio := a.RPS / b.RPS
			if c.rows != 0 && c.rows != n {
				fmt.Fprintf(tw, "ours/%s\t%d\t%.2fx\t-\t-\t\n", c.other, n, ratio)
				continue
			}
			verdict := "met"
			if ratio < c.target {
				verdict = "SHORT"
			}
			fmt.Fprintf(tw, "ours/%s\t%d\t%.2fx\t>= %gx\t%s\t\n", c.other, n, ratio, c.target, verdict)
		}
	}
	tw.Flush()
	var errs []string
	for _, r := range ri.results {
		if r.Errors > 0 {
			errs = append(errs, fmt.Sprintf("%s/%d rows: %d", r.Server, r.Rows, r.Errors))
		}
	}
	if len(errs) > 0 {
		fmt.Fprintf(out, "\nWARNING: failed requests during load (%s): their figures are not comparable\n", strings.Join(errs, ", "))
	}
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
