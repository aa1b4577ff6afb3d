package server_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// deployAs reports a finished deploy of model v1 into env on count instances of itype.
func deployAs(t *testing.T, e *servertest.Env, env, model, itype string, count int) {
	t.Helper()
	c := e.Client(env)
	v := releases.Version{Number: 1}
	r, err := c.StartRelease(bg, releases.ReleaseStart{Environment: env, Model: model, Kind: releases.KindDeploy, Version: v, InstanceType: itype, InstanceCount: count})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.FinishRelease(bg, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &v, EndpointStatus: "InService", InstanceType: itype, InstanceCount: count}); err != nil {
		t.Fatal(err)
	}
}

// invocations reports one Invocations point per 12 hours over the last days, each of value v.
func invocations(t *testing.T, e *servertest.Env, env, model string, now time.Time, days int, v float64) {
	t.Helper()
	var pts []releases.MetricPoint
	for at := now.Add(-time.Duration(days) * day); !at.After(now); at = at.Add(12 * time.Hour) {
		pts = append(pts, releases.MetricPoint{Metric: releases.MetricInvocations, Time: at, Value: v})
	}
	if err := e.Client(env).ReportMetrics(bg, releases.MetricsReport{Environment: env, Model: model, Points: pts}); err != nil {
		t.Fatal(err)
	}
}

// TestCostAndIdleThroughTheAPI: prod (us-east-1) runs abalone on 2 × ml.m5.xlarge at the table's
// $0.269/h: 0.269 × 730 × 2 = $392.74 a month; iris on a type the table does not know is left
// out of the total and says why; dev is the local SageMaker and costs nothing. abalone had no
// invocation for 3 days: idle with idle_days=2, not with 7 (the metrics do not go back that far).
func TestCostAndIdleThroughTheAPI(t *testing.T) {
	clk := newClock()
	e := servertest.Start(t, servertest.Options{Now: clk.Now, Environments: []releases.Environment{
		{Name: "dev", Kind: "local", Position: 0},
		{Name: "prod", Kind: "sagemaker", Region: "us-east-1", Position: 1},
	}})
	deployAs(t, e, "dev", "abalone", "ml.m5.xlarge", 1)
	deployAs(t, e, "prod", "abalone", "ml.m5.xlarge", 2)
	deployAs(t, e, "prod", "iris", "ml.x9.huge", 1)
	invocations(t, e, "prod", "abalone", clk.Now(), 3, 0)
	invocations(t, e, "prod", "iris", clk.Now(), 3, 7)

	rep := cost(t, e, "?idle_days=2")
	ab, iris, devAb := find(rep, "prod", "abalone"), find(rep, "prod", "iris"), find(rep, "dev", "abalone")
	if !ab.Priced || ab.HourlyUSD != 0.269 || math.Abs(ab.MonthlyUSD-392.74) > 0.005 || !ab.Idle || ab.IdleDays != 2 {
		t.Fatalf("prod abalone: %+v", ab)
	}
	if iris.Priced || iris.MonthlyUSD != 0 || iris.Note == "" || iris.Idle || iris.LastInvocation == nil {
		t.Fatalf("prod iris: %+v", iris)
	}
	if !devAb.Priced || devAb.MonthlyUSD != 0 || devAb.Note != "local SageMaker: no AWS charge" {
		t.Fatalf("dev abalone: %+v", devAb)
	}
	prod := rep.Environments[1]
	if prod.Environment != "prod" || math.Abs(prod.MonthlyUSD-392.74) > 0.005 || prod.Unpriced != 1 || prod.Idle != 1 {
		t.Fatalf("prod total: %+v", prod)
	}
	if rep.PriceSource == "" || rep.PriceDate == "" {
		t.Fatalf("the report does not name its price source and date: %+v", rep)
	}
	page := newBrowserlessSession(t, e, "admin", e.AdminPassword).get("/")
	// The overview flags endpoints idle for 7 days: abalone's 3 quiet days are not enough there.
	if want := `<div class="muted small" data-env-cost="prod">≈ $393/month + 1 unpriced</div>`; !strings.Contains(page, want) {
		t.Errorf("the overview lacks prod's cost %s:\n%s", want, section(page, `<table id="overview">`, `</thead>`))
	}
	if ab := find(cost(t, e, "?idle_days=7"), "prod", "abalone"); ab.Idle {
		t.Fatalf("idle after 7 days with 3 days of metrics: %+v", ab)
	}
	if r := e.Do("GET", "/api/v1/cost?idle_days=soon", e.Admin(), nil); r.Status != 400 {
		t.Fatalf("idle_days=soon: %s", r.Error())
	}
}

func cost(t *testing.T, e *servertest.Env, q string) server.CostReport {
	t.Helper()
	var rep server.CostReport
	r := e.Do("GET", "/api/v1/cost"+q, e.Admin(), nil)
	if r.Status != 200 {
		t.Fatalf("GET /api/v1/cost%s: %s", q, r.Error())
	}
	r.JSON(t, &rep)
	return rep
}

func find(rep server.CostReport, env, model string) server.ComponentCost {
	for _, c := range rep.Components {
		if c.Environment == env && c.Model == model {
			return c
		}
	}
	return server.ComponentCost{}
}
