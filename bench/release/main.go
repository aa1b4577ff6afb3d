// Command release times the seed's whole release flow — create-model, the dev endpoint
// configuration, the dev deploy to InService with a verification invoke, the approval at prod's
// gate, the prod configuration and the prod deploy — on what `sagedeploy up` runs (allinone: the
// local SageMaker, the release server and the agent, here in this process), with sagedeploy's
// deployer reporting every release; and, as the baseline in the same run, the same SageMaker work
// done with bare SDK calls and a tight DescribeEndpoint loop.
//
// Per flow it reports the median and p90 wall time over fresh model groups, each step's median,
// the SageMaker API calls counted at the local SageMaker's edge by operation (and the release
// server's), the time each wait went on after the control plane had set the endpoint InService,
// and how long the deployer took to notice the approval.
//
//	go run ./bench/release               # 10 runs of each flow after a warm-up
//	go run ./bench/release -runs 30
//
// It is a program, not a test: `go test ./...` never runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The goals: the flow at most 1.3× the bare calls plus reports (medians), and at most 26
// SageMaker calls per seed flow.
const (
	targetRatio = 1.3
	targetCalls = 26
)

func main() {
	runs := flag.Int("runs", 10, "timed runs of each flow, each on a fresh model group")
	warmup := flag.Int("warmup", 1, "untimed runs of each flow first")
	keep := flag.Bool("keep", false, "keep the data directory (local SageMaker state, release database)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the timed runs (both flows and the servers, all in this process) to `FILE`")
	trace := flag.Bool("trace", false, "print the last run's AWS calls of each step in order, with the deployer function that made each")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "Usage: go run ./bench/release [flags]\n\n"+
			"Times the seed's release flow (create-model, dev config, dev deploy + verify, approval, prod config,\n"+
			"prod deploy) with sagedeploy's deployer against bare SDK calls, on a local SageMaker and release server.\n\nFlags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	// Both flows talk plain HTTP to 127.0.0.1, yet the AWS SDK parses the CA bundle that
	// AWS_CA_BUNDLE names (~140 certificates on these machines, 4-10 ms) each time a step loads its
	// AWS configuration: a cost of the machine, not of either flow, that no connection here uses.
	os.Unsetenv("AWS_CA_BUNDLE")
	if *runs < 1 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "release bench: need -runs >= 1 and -warmup >= 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, options{runs: *runs, warmup: *warmup, keep: *keep, trace: *trace, cpuprofile: *cpuprofile}); err != nil {
		fmt.Fprintln(os.Stderr, "release bench:", err)
		os.Exit(1)
	}
}

// options are the command's flags.
type options struct {
	runs, warmup int
	keep, trace  bool
	cpuprofile   string
}

func run(ctx context.Context, out io.Writer, opt options) error {
	runs, warmup, keep, trace := opt.runs, opt.warmup, opt.keep, opt.trace
	dir, err := os.MkdirTemp("", "sagedeploy-bench-release-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintf(os.Stderr, "data in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	s, err := startStack(ctx, dir)
	if err != nil {
		return err
	}
	defer s.close()
	if trace {
		s.sm.tl = &timeline{}
		s.rel.tl = s.sm.tl
	}

	var ours, base []flowResult
	for i := -warmup; i < runs; i++ {
		n := i + warmup
		if i == 0 && opt.cpuprofile != "" {
			stop, err := startProfile(opt.cpuprofile)
			if err != nil {
				return err
			}
			defer stop()
		}
		group, baseGroup := fmt.Sprintf("flow%d", n), fmt.Sprintf("base%d", n)
		if _, err := prepare(ctx, s, group); err != nil {
			return err
		}
		arn, err := prepare(ctx, s, baseGroup)
		if err != nil {
			return err
		}
		// Alternate which flow goes first, so that drift on the machine falls on both.
		// Each flow's endpoints are deleted before the next flow starts, so that every flow
		// meets a fresh account (preflight's capacity check counts the endpoints it finds).
		var o, b flowResult
		flows := []func() error{
			func() (err error) {
				if o, err = runDeployer(ctx, s, group, fmt.Sprintf("pipeline-%d", n)); err != nil {
					return err
				}
				return cleanUp(ctx, s, group+"-dev", group+"-prod")
			},
			func() (err error) {
				if b, err = runBaseline(ctx, s, baseGroup, arn); err != nil {
					return err
				}
				return cleanUp(ctx, s, baseGroup+"-base-dev", baseGroup+"-base-prod")
			},
		}
		if n%2 == 1 {
			flows[0], flows[1] = flows[1], flows[0]
		}
		for _, f := range flows {
			if err := f(); err != nil {
				return err
			}
		}
		label := "run"
		if i < 0 {
			label = "warm-up"
		} else {
			ours, base = append(ours, o), append(base, b)
		}
		fmt.Fprintf(os.Stderr, "%s %d: sagedeploy %s, baseline %s\n", label, n+1, ms(o.total), ms(b.total))
	}
	report(out, ours, base)
	return nil
}

// startProfile starts a CPU profile into path; stop ends it.
func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// quantile is the nearest-rank q-quantile.
func quantile(ds []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(k, len(s)-1))]
}

func pick(rs []flowResult, f func(flowResult) time.Duration) []time.Duration {
	out := make([]time.Duration, len(rs))
	for i, r := range rs {
		out[i] = f(r)
	}
	return out
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

func report(w io.Writer, ours, base []flowResult) {
	fmt.Fprintf(w, "bench/release: the seed's flow on sagedeploy up's stack (allinone, in process)\n")
	fmt.Fprintf(w, "machine: %d CPUs, %s; %s; %s\n", runtime.NumCPU(), machine(), runtime.Version(), time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(w, "runs: %d of each flow, a fresh model group each\n\n", len(ours))

	tot := func(r flowResult) time.Duration { return r.total }
	om, bm := quantile(pick(ours, tot), 0.5), quantile(pick(base, tot), 0.5)
	fmt.Fprintf(w, "%-34s %10s %10s %10s %10s\n", "whole flow", "median", "p90", "min", "max")
	for _, row := range []struct {
		name string
		rs   []flowResult
	}{{"sagedeploy (deployer + releases)", ours}, {"bare calls plus reports", base}} {
		d := pick(row.rs, tot)
		fmt.Fprintf(w, "%-34s %10s %10s %10s %10s\n", row.name, ms(quantile(d, 0.5)), ms(quantile(d, 0.9)), ms(quantile(d, 0)), ms(quantile(d, 1)))
	}
	ratio := float64(om) / float64(bm)
	fmt.Fprintf(w, "ratio sagedeploy / bare calls plus reports (medians): %.2f×; target ≤ %.1f×: %s\n\n", ratio, targetRatio, verdict(ratio <= targetRatio))

	fmt.Fprintf(w, "%-38s %12s %12s %8s\n", "step (median)", "sagedeploy", "baseline", "ratio")
	for i, name := range stepNames {
		st := func(r flowResult) time.Duration { return r.steps[i] }
		o, b := quantile(pick(ours, st), 0.5), quantile(pick(base, st), 0.5)
		fmt.Fprintf(w, "%-38s %12s %12s %7.2f×\n", name, ms(o), ms(b), float64(o)/float64(max(b, time.Microsecond)))
	}

	fmt.Fprintf(w, "\nwait after InService (control plane set InService → waiter knew; LastModifiedTime has ms precision)\n")
	fmt.Fprintf(w, "%-38s %10s %10s %10s\n", "", "median", "p90", "max")
	for i, env := range []string{"dev", "prod"} {
		wt := func(r flowResult) time.Duration { return r.waits[i] }
		for _, row := range []struct {
			name string
			rs   []flowResult
		}{{"sagedeploy " + env + " deploy", ours}, {"baseline " + env + " (tight poll)", base}} {
			d := pick(row.rs, wt)
			fmt.Fprintf(w, "%-38s %10s %10s %10s\n", row.name, ms(quantile(d, 0.5)), ms(quantile(d, 0.9)), ms(quantile(d, 1)))
		}
	}
	ap := pick(ours, func(r flowResult) time.Duration { return r.approval })
	fmt.Fprintf(w, "%-38s %10s %10s %10s\n", "approval → prod deploy going on", ms(quantile(ap, 0.5)), ms(quantile(ap, 0.9)), ms(quantile(ap, 1)))

	reportCalls(w, ours, base)
}

// reportCalls prints the API calls per flow, by operation: SageMaker's (and STS's, S3's) counted
// by a middleware on the SDK clients, the release server's at its edge.
func reportCalls(w io.Writer, ours, base []flowResult) {
	all := callTable(w, "AWS calls per seed flow (mean over runs; SDK middleware)", ours, base, func(r flowResult) map[string]int { return r.sm })
	// Summed as integers and divided once: a mean of 26 must not print as met and compare as 26.000001.
	total := 0
	for _, r := range ours {
		for _, n := range sageMakerOnly(r.sm) {
			total += n
		}
	}
	so := float64(total) / float64(len(ours))
	fmt.Fprintf(w, "SageMaker calls per seed flow: %.1f (all AWS calls: %.1f); target ≤ %d: %s\n", so, all, targetCalls, verdict(so <= targetCalls))
	fmt.Fprintf(w, "\nsagedeploy's SageMaker calls by step (last run)\n")
	last := ours[len(ours)-1]
	for i, calls := range last.stepSM {
		var parts []string
		for _, k := range sortedKeys(calls) {
			parts = append(parts, fmt.Sprintf("%s %d", k, calls[k]))
		}
		fmt.Fprintf(w, "  %-34s %s\n", stepNames[i]+":", strings.Join(parts, ", "))
	}
	for i, calls := range last.stepTrace {
		if len(calls) == 0 {
			continue // no -trace
		}
		fmt.Fprintf(w, "\n%s (last run, %s): calls in order, ms from the step's start and ms taken\n", stepNames[i], ms(last.steps[i]))
		for j, c := range calls {
			fmt.Fprintf(w, "  %2d %7.2f %6.2f  %s\n", j+1, float64(c.at.Sub(last.stepStart[i]))/1e6, float64(c.took)/1e6, c.what)
		}
	}
	callTable(w, "release server calls per flow (mean over runs; at its edge)", ours, base, func(r flowResult) map[string]int { return r.rel })
}

// sageMakerOnly keeps SageMaker's operations: the control plane's (no prefix) and the runtime's.
func sageMakerOnly(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if !strings.Contains(k, ":") || strings.HasPrefix(k, "sagemaker-runtime:") {
			out[k] = v
		}
	}
	return out
}

// callTable prints the mean calls per flow by operation and returns ours' total.
func callTable(w io.Writer, title string, ours, base []flowResult, get func(flowResult) map[string]int) float64 {
	mean := func(rs []flowResult) map[string]float64 {
		out := map[string]float64{}
		for _, r := range rs {
			for k, v := range get(r) {
				out[k] += float64(v) / float64(len(rs))
			}
		}
		return out
	}
	o, b := mean(ours), mean(base)
	keys := map[string]int{}
	for k := range o {
		keys[k] = 1
	}
	for k := range b {
		keys[k] = 1
	}
	fmt.Fprintf(w, "\n%-52s %10s %10s\n", title, "sagedeploy", "baseline")
	var to, tb float64
	for _, k := range sortedKeys(keys) {
		fmt.Fprintf(w, "  %-50s %10.1f %10.1f\n", k, o[k], b[k])
		to, tb = to+o[k], tb+b[k]
	}
	fmt.Fprintf(w, "  %-50s %10.1f %10.1f\n", "total", to, tb)
	return to
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}
