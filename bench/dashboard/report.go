package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d.Microseconds())/1000) }

func report(out io.Writer, o options, started time.Time, load0 string, results []backendResult) {
	fmt.Fprintf(out, "bench/dashboard — release server with %d releases (%d environments × %d models, %d events each)\n\n",
		o.releases, o.environments, o.models, o.events)
	fmt.Fprintf(out, "machine:   %d cores (%s), %s, %s/%s, %s\n", runtime.NumCPU(), cpuModel(), runtime.Version(), runtime.GOOS, runtime.GOARCH, started.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(out, "load avg:  %s before, %s after\n", load0, loadAvg())
	fmt.Fprintf(out, "method:    server in this process on 127.0.0.1 (real HTTP); pages fetched one after another by a\n"+
		"           client signed in through the sign-in form; %d requests per page after %d unmeasured\n", o.requests, o.warmup)
	for _, r := range results {
		fmt.Fprintf(out, "\n== %s (%s)\n", r.backend, r.location)
		fmt.Fprintf(out, "seed:      %d releases + %d events through store.ImportReleases in %s (%.0f releases/s)\n",
			r.seeded, r.events, r.seedTime.Round(time.Millisecond), float64(r.seeded)/r.seedTime.Seconds())
		l := r.live
		fmt.Fprintf(out, "live:      %d releases (start, %d events, finish; one per component) through the API by 4 deployers\n"+
			"           in %s: %.0f releases/s; AddEvent p50 %s ms, p95 %s ms\n",
			l.releases, o.events, l.elapsed.Round(time.Millisecond), float64(l.releases)/l.elapsed.Seconds(),
			ms(percentile(l.eventLatency, 50)), ms(percentile(l.eventLatency, 95)))
		in := r.ingest
		fmt.Fprintf(out, "ingest:    %d events in %s by %d deployers (integration tokens, releases.Client.AddEvent): %.0f events/s;\n"+
			"           AddEvent p50 %s ms, p95 %s ms, p99 %s ms\n\n",
			in.events, in.elapsed.Round(time.Millisecond), in.clients, float64(in.events)/in.elapsed.Seconds(),
			ms(percentile(in.latency, 50)), ms(percentile(in.latency, 95)), ms(percentile(in.latency, 99)))
		target := o.targetP95
		if r.backend == "postgres" {
			target = o.targetPG
		}
		tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "page\tp50 ms\tp95 ms\tp99 ms\tmax ms\tKB\ttarget p95\t")
		worst := time.Duration(0)
		for _, p := range r.pages {
			p95 := percentile(p.latency, 95)
			worst = max(worst, p95)
			verdict := "met"
			if p95 > target {
				verdict = "MISSED"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.0f\t<= %s %s\t\n", p.name, ms(percentile(p.latency, 50)), ms(p95),
				ms(percentile(p.latency, 99)), ms(percentile(p.latency, 100)), float64(p.bytes)/1024, ms(target), verdict)
		}
		tw.Flush()
		fmt.Fprintf(out, "worst p95: %s ms (target %s ms)\n", ms(worst), ms(target))
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
