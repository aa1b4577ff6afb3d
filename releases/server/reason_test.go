package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// reasonOf reads a release through the API and returns its typed failure reason as JSON says it.
func reasonOf(t *testing.T, e *servertest.Env, id string) (releases.Status, releases.Reason) {
	t.Helper()
	var v struct {
		Status releases.Status `json:"status"`
		Reason releases.Reason `json:"reason"`
	}
	e.Do("GET", "/api/v1/releases/"+id, e.Admin(), nil).JSON(t, &v)
	return v.Status, v.Reason
}

// TestFinishedReleasesCarryTypedReasons follows each way a release can end without success and
// checks the reason the API answers: the deployer's own, errored for an older deployer that sends
// none, and the server's for rejections, cancels and its no-progress timeout.
func TestFinishedReleasesCarryTypedReasons(t *testing.T) {
	clk := &clock{t: time.Now().UTC()}
	e := servertest.Start(t, servertest.Options{Now: clk.Now, Server: server.Options{RunningTimeout: 10 * time.Minute, SweepInterval: time.Hour}})
	dev, prod := e.Client("dev"), e.Client("prod")
	e.Deploy("dev", "abalone", 1, 1)
	start := func(c *releases.Client, env, model string, n int) releases.Release {
		t.Helper()
		r, err := c.StartRelease(bg, releases.ReleaseStart{Environment: env, Model: model, Kind: releases.KindDeploy, Version: releases.Version{Number: n}})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	rolled := start(dev, "dev", "abalone", 2)
	if _, err := dev.FinishRelease(bg, rolled.ID, releases.ReleaseFinish{Status: releases.StatusFailed, Reason: releases.ReasonRolledBack,
		FailureReason: "SageMaker rolled the update back", ServingVersion: &releases.Version{Number: 1}}); err != nil {
		t.Fatal(err)
	}
	old := start(dev, "dev", "abalone", 3)
	if _, err := dev.FinishRelease(bg, old.ID, releases.ReleaseFinish{Status: releases.StatusFailed, FailureReason: "crashed"}); err != nil {
		t.Fatal(err)
	}
	bad := start(dev, "dev", "abalone", 4)
	wantResp(t, e.Do("POST", "/api/v1/releases/"+bad.ID+"/finish", servertest.Bearer(e.Token("dev")),
		map[string]string{"status": "failed", "reason": "gremlins"}), 400, "gremlins", "not valid")

	gated := start(prod, "prod", "abalone", 1)
	wantResp(t, e.Do("POST", "/api/v1/releases/"+gated.ID+"/reject", e.Admin(), map[string]string{"reason": "not on a Friday"}), 200)

	e.Deploy("dev", "iris", 1, 1)
	resp := e.Do("POST", "/api/v1/components/dev/iris/scale", e.Admin(), map[string]int{"instances": 2})
	var cr commandResp
	resp.JSON(t, &cr)
	wantResp(t, e.Do("POST", "/api/v1/releases/"+cr.Release.ID+"/cancel", e.Admin(), nil), 200)

	clk.Advance(11 * time.Minute)
	if err := e.Server.Sweep(bg); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		id     string
		status releases.Status
		reason releases.Reason
	}{
		{"rolled back by SageMaker", rolled.ID, releases.StatusFailed, releases.ReasonRolledBack},
		{"older deployer without a reason", old.ID, releases.StatusFailed, releases.ReasonErrored},
		{"no progress: the server's timeout", bad.ID, releases.StatusFailed, releases.ReasonTimedOut},
		{"rejected at the gate", gated.ID, releases.StatusCanceled, releases.ReasonRejected},
		{"canceled command", cr.Release.ID, releases.StatusCanceled, releases.ReasonCanceled},
	} {
		if st, reason := reasonOf(t, e, tc.id); st != tc.status || reason != tc.reason {
			t.Errorf("%s: status %s, reason %q; want %s, %q", tc.name, st, reason, tc.status, tc.reason)
		}
	}
	// A release that succeeded says no reason at all.
	ok := e.Deploy("dev", "abalone", 5, 1)
	if resp := e.Do("GET", "/api/v1/releases/"+ok.ID, e.Admin(), nil); strings.Contains(string(resp.Body), `"reason"`) {
		t.Errorf("a succeeded release has a reason: %s", resp.Body)
	}
}

// TestDashboardShowsTheFailureReason checks the words a person reads on the release page and in
// the releases list for a release SageMaker rolled back.
func TestDashboardShowsTheFailureReason(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	dev := e.Client("dev")
	e.Deploy("dev", "abalone", 1, 1)
	r, err := dev.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy, Version: releases.Version{Number: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.FinishRelease(bg, r.ID, releases.ReleaseFinish{Status: releases.StatusFailed, Reason: releases.ReasonVerificationFailed,
		FailureReason: "the endpoint answered 0.3, expected 9.5"}); err != nil {
		t.Fatal(err)
	}
	b := newBrowserlessSession(t, e, "admin", e.AdminPassword)
	page := b.get("/releases/" + r.ID)
	if !strings.Contains(page, `data-reason="verification-failed"`) || !strings.Contains(page, "(verification failed)") || !strings.Contains(page, "expected 9.5") {
		t.Fatalf("release page does not show the reason:\n%s", grep(page, "failure"))
	}
	list := b.get("/releases")
	if !strings.Contains(list, `<span class="muted small reason" data-reason="verification-failed">verification failed</span>`) {
		t.Fatalf("releases list does not show the reason:\n%s", grep(list, r.ID[:8]))
	}
}
