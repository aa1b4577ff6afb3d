package server

import (
	"context"
	"fmt"
	"html/template"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// chartSpan is a span of time the component page draws.
type chartSpan struct {
	win   time.Duration
	label string
}

// chartWindows are the windows the component page draws, the first one open.
func chartWindows() []chartSpan {
	return []chartSpan{{time.Hour, "Last hour"}, {24 * time.Hour, "Last day"}, {7 * 24 * time.Hour, "Last week"}}
}

// componentCharts draws a component's pictures: traffic, errors and latency per window with
// release markers, its version timeline and the duration of its releases.
func (s *Server) componentCharts(ctx context.Context, env, model string) (template.HTML, error) {
	now := s.st.Now()
	page, err := s.st.ListReleases(ctx, store.ReleaseFilter{Environment: env, Model: model, Limit: 100})
	if err != nil {
		return "", err
	}
	rels := page.Releases
	slices.Reverse(rels) // oldest first
	var b strings.Builder
	b.WriteString(`<section class="charts" id="charts"><h2>Traffic, errors and latency</h2>`)
	windows := chartWindows()
	for i, w := range windows {
		n, step := bucketsFor(w.win)
		to := now.Truncate(step).Add(step)
		from := to.Add(-step * time.Duration(n))
		buckets, err := s.st.MetricBuckets(ctx, env, model, from, step, n)
		if err != nil {
			return "", err
		}
		if i == len(windows)-1 && len(buckets) == 0 {
			b.WriteString(`<p class="muted small" id="no-metrics">No metrics yet: an agent reads them from CloudWatch on its observe interval (sagedeploy agent --observe-interval).</p>`)
		}
		b.WriteString(trafficFigure(buckets, markersOf(rels), from, to, step, w.label, i == 0))
	}
	b.WriteString(`<h2>Version timeline</h2>`)
	b.WriteString(versionTimeline(rels, now))
	b.WriteString(`<h2>Release durations</h2>`)
	b.WriteString(durationTrend(rels))
	b.WriteString(`</section>`)
	return template.HTML(b.String()), nil // every value in it went through esc
}

// markersOf puts each release that changed what the component serves on the time axis.
func markersOf(rels []store.ReleaseRecord) []marker {
	var out []marker
	for _, r := range rels {
		if r.FinishedAt == nil || r.Status != releases.StatusSucceeded {
			continue
		}
		out = append(out, marker{At: *r.FinishedAt, Label: releaseLabel(r)})
	}
	return out
}

func releaseLabel(r store.ReleaseRecord) string {
	switch r.Kind {
	case releases.KindRestore:
		return fmt.Sprintf("rollback to v%d", r.Version.Number)
	case releases.KindScale:
		return fmt.Sprintf("scale to %d", r.InstanceCount)
	}
	return fmt.Sprintf("v%d", r.Version.Number)
}

func trafficFigure(buckets []store.MetricBucket, marks []marker, from, to time.Time, step time.Duration, label string, open bool) string {
	win := to.Sub(from)
	n := int(win / step)
	id := "w" + strings.TrimSuffix(strings.ReplaceAll(win.String(), "0m0s", ""), "h")
	inv := bucketize(buckets, releases.MetricInvocations, n, true)
	e4 := bucketize(buckets, releases.Metric4XX, n, true)
	e5 := bucketize(buckets, releases.Metric5XX, n, true)
	traffic := lineChart{ID: "chart-traffic-" + id, Title: "Invocations and errors, " + strings.ToLower(label), Unit: "/" + stepName(step), From: from, To: to, Markers: marks,
		Series: []series{{"invocations", "s-inv", "", inv, false}, {"4xx errors", "s-4xx", "6 3", e4, false}, {"5xx errors", "s-5xx", "2 2", e5, false}}}
	trafficText := fmt.Sprintf("%s invocations, %s 4xx and %s 5xx errors %s; %d release%s in this window.",
		short(total(inv)), short(total(e4)), short(total(e5)), strings.ToLower(label), len(inWindow(marks, from, to)), plural(len(inWindow(marks, from, to))))
	p50 := msOf(bucketize(buckets, releases.MetricLatencyP50, n, false))
	p99 := msOf(bucketize(buckets, releases.MetricLatencyP99, n, false))
	lat := lineChart{ID: "chart-latency-" + id, Title: "Model latency p50 and p99, " + strings.ToLower(label), Unit: "ms", From: from, To: to, Markers: marks,
		Series: []series{{"p50 latency", "s-p50", "", p50, true}, {"p99 latency", "s-p99", "6 3", p99, true}}}
	latText := "No latency measured " + strings.ToLower(label) + "."
	if !math.IsNaN(worst(p99)) {
		latText = fmt.Sprintf("Model latency %s: p50 up to %s ms, p99 up to %s ms.", strings.ToLower(label), short(worst(p50)), short(worst(p99)))
	}
	attr := ""
	if open {
		attr = " open"
	}
	return fmt.Sprintf(`<details class="chart-window" data-window="%s"%s><summary>%s</summary>`+
		`<figure>%s<figcaption class="chart-text" id="%s-text">%s %s</figcaption></figure>`+
		`<figure>%s<figcaption class="chart-text" id="%s-text">%s</figcaption></figure></details>`,
		win, attr, esc(label), traffic.svg(trafficText), traffic.ID, legend(traffic.Series), esc(trafficText), lat.svg(latText), lat.ID, esc(latText))
}

func stepName(step time.Duration) string {
	switch step {
	case time.Minute:
		return "min"
	case 15 * time.Minute:
		return "15 min"
	}
	return "2 h"
}

func inWindow(marks []marker, from, to time.Time) []marker {
	var out []marker
	for _, m := range marks {
		if !m.At.Before(from) && !m.At.After(to) {
			out = append(out, m)
		}
	}
	return out
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// msOf converts SageMaker's microseconds to milliseconds.
func msOf(vals []float64) []float64 {
	out := make([]float64, len(vals))
	for i, v := range vals {
		out[i] = v / 1000
	}
	return out
}

// legend names each line with its dash pattern, so colour is not the only key.
func legend(ss []series) string {
	var b strings.Builder
	b.WriteString(`<span class="legend">`)
	for _, s := range ss {
		fmt.Fprintf(&b, `<span class="key"><svg width="22" height="8" aria-hidden="true"><line class="series %s" x1="0" y1="4" x2="22" y2="4" stroke-width="2" stroke-dasharray="%s"/></svg>%s</span> `, s.Class, s.Dash, esc(s.Name))
	}
	b.WriteString(`</span>`)
	return b.String()
}
