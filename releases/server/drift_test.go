package server_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// TestDriftReportedAdoptedAndAnnounced: an agent reports dev's endpoint on v2 with 3 instances
// while sagedeploy recorded v1 on 1. The server marks the drift once (one notification), lists
// it, exports it in /metrics, and adopting it makes v2 on 3 instances the recorded state.
func TestDriftReportedAdoptedAndAnnounced(t *testing.T) {
	var mu sync.Mutex
	var announced []releases.Drift
	e := servertest.Start(t, servertest.Options{Server: server.Options{OnDrift: func(_ context.Context, d releases.Drift) {
		mu.Lock()
		defer mu.Unlock()
		announced = append(announced, d)
	}}})
	rel := e.Deploy("dev", "abalone", 1, 1)
	dev := e.Client("dev")
	inSync := releases.Observation{Environment: "dev", Model: "abalone", EndpointName: "abalone-dev", EndpointStatus: "InService", Version: 1, InstanceType: "ml.m5.large", InstanceCount: 1, EndpointConfigName: rel.EndpointConfigName}
	if d, err := dev.ReportObservation(bg, inSync); err != nil || d != nil {
		t.Fatalf("in-sync observation: drift %+v, %v", d, err)
	}
	changed := inSync
	changed.Version, changed.InstanceCount, changed.EndpointConfigName = 2, 3, "abalone-dev-console"
	for range 2 {
		d, err := dev.ReportObservation(bg, changed)
		if err != nil || d == nil {
			t.Fatalf("changed observation: drift %+v, %v", d, err)
		}
		// servertest's deploys report no configuration name, so the configuration is not compared.
		if got := d.Summary(); got != "changed outside sagedeploy: version 1 → 2, instances 1 → 3" {
			t.Fatalf("summary %q", got)
		}
	}
	mu.Lock()
	if len(announced) != 1 || announced[0].Model != "abalone" {
		t.Fatalf("announced %d drifts, want 1: %+v", len(announced), announced)
	}
	mu.Unlock()
	if _, err := e.Client("prod").ReportObservation(bg, changed); err == nil {
		t.Fatal("prod's token reported an observation of dev")
	}
	list, err := dev.Drift(bg)
	if err != nil || len(list) != 1 {
		t.Fatalf("drift list: %+v, %v", list, err)
	}
	if m := scrape(t, e); !strings.Contains(m, `sagedeploy_component_drift{differences="version,instances",environment="dev",model="abalone"} 1`) {
		t.Fatalf("/metrics has no drift of dev/abalone:\n%s", grepLines(m, "drift"))
	}

	// The component page offers both ways out; the overview marks the cell.
	b := newBrowserlessSession(t, e, "admin", e.AdminPassword)
	page := b.get("/components/dev/abalone")
	for _, want := range []string{`id="drift"`, `<li data-field="version">version: recorded <strong>1</strong>, endpoint has <strong>2</strong></li>`,
		`action="/components/dev/abalone/adopt"`, `Adopt what the endpoint serves (v2)`,
		`action="/components/dev/abalone/restore"`, `<input type="hidden" name="version" value="1">`, `Redeploy the recorded v1`} {
		if !strings.Contains(page, want) {
			t.Errorf("the component page lacks %s", want)
		}
	}
	if !strings.Contains(b.get("/"), `data-drift title="changed outside sagedeploy: version 1 → 2, instances 1 → 3">⚠ changed outside sagedeploy</span>`) {
		t.Error("the overview does not mark dev/abalone changed outside sagedeploy")
	}
	r := e.Do("POST", "/api/v1/components/dev/abalone/adopt", e.Admin(), nil)
	if r.Status != 200 {
		t.Fatalf("adopt: %s", r.Error())
	}
	c, err := e.Store.Component(bg, "dev", "abalone")
	if err != nil || c.CurrentVersion == nil || c.CurrentVersion.Number != 2 || c.InstanceCount != 3 {
		t.Fatalf("after adopting: %+v, %v", c, err)
	}
	if d, err := dev.ReportObservation(bg, changed); err != nil || d != nil {
		t.Fatalf("the adopted state observed again: drift %+v, %v", d, err)
	}
	if r := e.Do("POST", "/api/v1/components/dev/abalone/adopt", e.Admin(), nil); r.Status != 409 || !strings.Contains(r.Error(), "no observed change to adopt") {
		t.Fatalf("adopting twice: %s", r.Error())
	}
	if m := scrape(t, e); strings.Contains(m, `sagedeploy_component_drift{`) {
		t.Fatalf("/metrics still has drift after adopting:\n%s", grepLines(m, "drift"))
	}
}

// TestNoDriftDuringARelease: an endpoint observed while a release of it runs is meant to differ.
func TestNoDriftDuringARelease(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 1, 1)
	dev := e.Client("dev")
	if _, err := dev.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: releases.Version{Number: 2}}); err != nil {
		t.Fatal(err)
	}
	d, err := dev.ReportObservation(bg, releases.Observation{Environment: "dev", Model: "abalone", EndpointStatus: "Updating", Version: 2, InstanceCount: 2})
	if err != nil || d != nil {
		t.Fatalf("observation during a release: drift %+v, %v", d, err)
	}
	if _, err := dev.ReportObservation(bg, releases.Observation{Environment: "dev", Model: "iris", Version: 1}); err == nil || !strings.Contains(err.Error(), "no component iris in environment dev") {
		t.Fatalf("observation of an unknown component: %v", err)
	}
}

func scrape(t *testing.T, e *servertest.Env) string {
	t.Helper()
	resp, err := http.Get(e.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
