package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// The traffic split of a canary deploy follows its traffic events on the release page and on the
// component page (and in the component API), in words as well as in the bar, and ends at 100%.
func TestTrafficSplitFollowsTheShifts(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 2, 1)
	ctx := context.Background()
	dev := e.Client("dev")
	r, err := dev.StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy,
		Version: releases.Version{Number: 3}, PreviousVersion: &releases.Version{Number: 2}, EndpointName: "abalone-dev"})
	if err != nil {
		t.Fatal(err)
	}
	add := func(phase releases.Phase, msg string) {
		t.Helper()
		if _, err := dev.AddEvent(ctx, r.ID, releases.Event{Phase: phase, Message: msg, EndpointStatus: "Updating"}); err != nil {
			t.Fatal(err)
		}
	}
	b := newBrowserlessSession(t, e, "admin", e.AdminPassword)
	pages := []string{"/releases/" + r.ID, "/components/dev/abalone"}
	expect := func(want ...string) {
		t.Helper()
		for _, p := range pages {
			body := b.get(p)
			for _, w := range want {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s lacks %q", p, w)
				}
			}
		}
	}

	expect("new v3: 0% · old v2: 100%", "waiting for the first shift")
	add(releases.PhaseTraffic, "endpoint abalone-dev: traffic shifted 20% to endpoint config abalone-dev-v3 (80% stays on abalone-dev-v2) (1.2s)")
	expect("new v3: 20% · old v2: 80%", `width="20"`, "(shifting)")
	add(releases.PhaseBake, "endpoint abalone-dev: baking for 5m0s before the next step; no rollback alarms watched (1.3s)")
	expect("new v3: 20% · old v2: 80%", "(baking)")

	var api struct {
		Split *struct {
			New        int     `json:"new_version"`
			Old        int     `json:"old_version"`
			NewPercent float64 `json:"new_percent"`
			Stage      string  `json:"stage"`
		} `json:"traffic_split"`
	}
	e.Do(http.MethodGet, "/api/v1/components/dev/abalone", e.Admin(), nil).JSON(t, &api)
	if s := api.Split; s == nil || s.New != 3 || s.Old != 2 || s.NewPercent != 20 || s.Stage != "baking" {
		t.Errorf("component API traffic_split: %+v", s)
	}

	add(releases.PhaseTraffic, "endpoint abalone-dev: traffic shifted 100% to endpoint config abalone-dev-v3 (5m1s)")
	expect("new v3: 100% · old v2: 0%")
	if _, err := dev.FinishRelease(ctx, r.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, ServingVersion: &releases.Version{Number: 3}, EndpointStatus: "InService"}); err != nil {
		t.Fatal(err)
	}
	pages = pages[:1] // the component page shows a split only while a release runs
	expect("new v3: 100% · old v2: 0%", "(done)")
	if strings.Contains(b.get("/components/dev/abalone"), "Traffic split") {
		t.Error("the component page still shows a traffic split after the release ended")
	}
}

// A release that moves no traffic between versions (the first deploy of a model, a scale) shows
// no split bar.
func TestNoTrafficSplitWithoutTwoVersions(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	first := e.Deploy("dev", "abalone", 1, 1)
	b := newBrowserlessSession(t, e, "admin", e.AdminPassword)
	if page := b.get("/releases/" + first.ID); !strings.Contains(page, first.ID) || strings.Contains(page, "Traffic split") {
		t.Error("the first deploy of abalone shows a traffic split")
	}
}
