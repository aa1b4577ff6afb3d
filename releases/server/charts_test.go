package server_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// TestComponentPageDrawsCharts: with invocations, errors and latency reported for the last
// hour, a deploy and a rollback, the component page carries accessible SVG charts (title, desc,
// text equivalents) that say those figures, mark the releases on the time axis and draw the
// version timeline with the rollback.
func TestComponentPageDrawsCharts(t *testing.T) {
	clk := newClock()
	e := servertest.Start(t, servertest.Options{Now: clk.Now})
	e.Deploy("dev", "abalone", 1, 1)
	clk.Advance(10 * time.Minute)
	e.Deploy("dev", "abalone", 2, 1)
	clk.Advance(10 * time.Minute)
	restore(t, e, "dev", "abalone", 1)
	clk.Advance(10 * time.Minute)
	now := clk.Now()
	var pts []releases.MetricPoint
	for i := range 30 {
		at := now.Add(-time.Duration(i) * time.Minute).Truncate(time.Minute)
		pts = append(pts, releases.MetricPoint{Metric: releases.MetricInvocations, Time: at, Value: 4},
			releases.MetricPoint{Metric: releases.Metric5XX, Time: at, Value: 1},
			releases.MetricPoint{Metric: releases.MetricLatencyP50, Time: at, Value: 2000},
			releases.MetricPoint{Metric: releases.MetricLatencyP99, Time: at, Value: 9000})
	}
	if err := e.Client("dev").ReportMetrics(bg, releases.MetricsReport{Environment: "dev", Model: "abalone", Points: pts}); err != nil {
		t.Fatal(err)
	}
	page := newBrowserlessSession(t, e, "admin", e.AdminPassword).get("/components/dev/abalone")

	for _, want := range []string{
		`<title id="chart-traffic-w1-t">Invocations and errors, last hour</title>`,
		`120 invocations, 0 4xx and 30 5xx errors last hour; 3 releases in this window.`,
		`Model latency last hour: p50 up to 2 ms, p99 up to 9 ms.`,
		`data-series="invocations"`, `data-series="5xx errors"`, `stroke-dasharray="2 2"`,
		`<title>rollback to v1 at `, `<title>v2 at `,
		`id="chart-timeline"`, `<li>rollback to v1 from `, `, serving now</li>`, `seg-rollback`,
		`id="chart-durations"`, `The last 3 releases took`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the component page lacks %s", want)
		}
	}
	if n := len(regexp.MustCompile(`<svg class="chart" id="chart-(traffic|latency)-w(1|24|168)"`).FindAllString(page, -1)); n != 6 {
		t.Errorf("%d traffic and latency charts, want 2 for each of 3 windows", n)
	}
	if t.Failed() {
		t.Logf("charts section:\n%s", section(page, `<section class="charts"`, `</section>`))
	}
}

func restore(t *testing.T, e *servertest.Env, env, model string, n int) {
	t.Helper()
	c := e.Client(env)
	v := releases.Version{Number: n}
	r, err := c.StartRelease(bg, releases.ReleaseStart{Environment: env, Model: model, Kind: releases.KindRestore, Version: v})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.FinishRelease(bg, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &v, EndpointStatus: "InService", InstanceCount: 1}); err != nil {
		t.Fatal(err)
	}
}

func section(s, from, to string) string {
	i := strings.Index(s, from)
	if i < 0 {
		return "(none)"
	}
	j := strings.Index(s[i:], to)
	if j < 0 {
		return s[i:]
	}
	return s[i : i+j+len(to)]
}
