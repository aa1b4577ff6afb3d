package web_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sagedeploy/sagedeploy/agent"
	"github.com/sagedeploy/sagedeploy/internal/browsertest"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// tab opens another tab of the same signed-in browser at url and marks its page load, so that
// sameLoad can tell later whether it was reloaded.
func tab(t *testing.T, parent context.Context, url string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent)
	t.Cleanup(cancel)
	browsertest.AcceptDialogs(ctx)
	must(t, chromedp.Do(ctx, chromedp.Navigate(url)))
	markLoad(t, ctx)
	return ctx
}

func markLoad(t *testing.T, ctx context.Context) {
	t.Helper()
	_, err := browsertest.Eval[bool](ctx, `window.__sameLoad = true`)
	must(t, err)
}

func sameLoad(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	if same, err := browsertest.Eval[bool](ctx, `window.__sameLoad === true`); err != nil || !same {
		t.Fatalf("the %s reloaded instead of updating live", page)
	}
}

// waitGone waits until no element matches sel.
func waitGone(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	_, err := browsertest.WaitFor(ctx, sel+" to go", func() (bool, bool, error) {
		n, err := browsertest.Eval[int](ctx, fmt.Sprintf(`document.querySelectorAll(%q).length`, sel))
		return n == 0, err == nil && n == 0, nil
	})
	must(t, err)
}

func command(t *testing.T, e *servertest.Env, kind string, body any) releases.Release {
	t.Helper()
	res := e.Do(http.MethodPost, "/api/v1/components/dev/abalone/"+kind, e.Admin(), body)
	if res.Status != http.StatusAccepted {
		t.Fatalf("%s: %d %s", kind, res.Status, res.Body)
	}
	var out struct{ Release releases.Release }
	res.JSON(t, &out)
	return out.Release
}

// TestBrowserOverviewAndComponentFollowCommandsAndDeploys keeps the overview and a component page
// open in two tabs, never reloaded, while a rollback and a scale run through an agent and a
// pipeline's deploys fail and succeed: both pages follow each change, the overview shows what
// the endpoint serves beside the release in progress (never "Failed" for an endpoint in service),
// and a finished rollback's command does not stay "dispatched".
func TestBrowserOverviewAndComponentFollowCommandsAndDeploys(t *testing.T) {
	e, ctx := start(t)
	for v := 1; v <= 2; v++ {
		e.Deploy("dev", "abalone", v, 1)
	}
	overview := tab(t, ctx, e.URL+"/")
	comp := tab(t, ctx, e.URL+"/components/dev/abalone")
	cell := `[data-component="dev/abalone"]`
	waitText(t, overview, cell, "v2")
	waitText(t, comp, "#current-version", "v2")

	// 1. A rollback, queued while no agent runs; its release page is open before it runs.
	rb := command(t, e, "rollback", nil)
	rel := tab(t, ctx, e.URL+"/releases/"+rb.ID)
	waitText(t, rel, "#command-state", "queued")
	waitText(t, comp, "#active-release", "rollback")
	actx, stop := context.WithCancel(bg)
	agentDone := make(chan error, 1)
	go func() {
		agentDone <- agent.Run(actx, agent.Options{Clients: []*releases.Client{e.Client("dev")}, Executor: deployerLike{delay: 300 * time.Millisecond},
			Logger: servertest.TestLogger(t), PollWait: 5 * time.Second})
	}()
	t.Cleanup(func() { stop(); <-agentDone })
	waitStatus(t, rel, "succeeded")
	waitText(t, rel, "#command-state", "succeeded")
	waitText(t, comp, "#current-version", "v1")
	waitGone(t, comp, "#active-release")
	waitText(t, overview, cell+" [data-serving]", "v1")

	// 2. A scale to 3 instances, while someone has typed 5 in the page's own scale box: the count
	// follows, what they typed stays.
	must(t, chromedp.Do(comp, chromedp.SetValue(chromedp.CSS("#instances"), "5")))
	command(t, e, "scale", map[string]int{"instances": 3})
	waitText(t, comp, "#instance-count", "3")
	waitText(t, overview, cell+" [data-instances]", "3")
	if v, err := browsertest.Eval[string](comp, `document.querySelector('#instances').value`); err != nil || v != "5" {
		t.Fatalf("the live update replaced the typed instance count with %q", v)
	}

	// 3. A pipeline deploys v3: the overview shows v1 still serving and the deploy beside it.
	dev := e.Client("dev")
	r, err := dev.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy,
		Version: releases.Version{Number: 3}, PreviousVersion: &releases.Version{Number: 1}, EndpointName: "abalone-dev", InstanceType: "ml.m5.large", InstanceCount: 3})
	must(t, err)
	_, err = dev.AddEvent(bg, r.ID, releases.Event{Phase: "wait", Message: "endpoint abalone-dev is Updating", EndpointStatus: "Updating"})
	must(t, err)
	running := waitText(t, overview, cell+" .cell-release", "Running")
	if !strings.Contains(running, "deploy v3") {
		t.Fatalf("the overview's release in progress: %q", running)
	}
	waitText(t, overview, cell+" [data-serving]", "v1")
	waitText(t, comp, "#active-release", "deploy")
	// Its verification fails and SageMaker rolls back: v1 serves, in service; the failure shows
	// beside it, not as the component's status.
	_, err = dev.FinishRelease(bg, r.ID, releases.ReleaseFinish{Status: releases.StatusFailed, Reason: releases.ReasonVerificationFailed,
		FailureReason: "verification failed", EndpointStatus: "InService", ServingVersion: &releases.Version{Number: 1}})
	must(t, err)
	failed := waitText(t, overview, cell+" .cell-release", "Failed")
	if !strings.Contains(failed, "v3") {
		t.Fatalf("the overview's failed release: %q", failed)
	}
	top := waitText(t, overview, cell+" .cell-top", "v1")
	if !strings.Contains(top, "In service") || strings.Contains(top, "Failed") {
		t.Fatalf("dev/abalone serves v1 in service after the rolled-back deploy, the overview says %q", top)
	}
	waitText(t, comp, "#component-status", "In service")
	waitGone(t, comp, "#active-release")
	// The next deploy succeeds.
	e.Deploy("dev", "abalone", 3, 3)
	waitText(t, overview, cell+" [data-serving]", "v3")
	waitGone(t, overview, cell+" .cell-release")
	waitText(t, comp, "#current-version", "v3")
	waitText(t, comp, "#rollback", "Roll back to v1")

	sameLoad(t, overview, "overview")
	sameLoad(t, comp, "component page")
	sameLoad(t, rel, "release page")
}

// TestBrowserApprovalsBadgeAndComparison: a promotion waiting at prod's gate appears on an open
// approvals page, in its nav badge and on an open releases list without a reload, and shows what
// prod serves now beside what it would serve.
func TestBrowserApprovalsBadgeAndComparison(t *testing.T) {
	e, ctx := start(t)
	e.Deploy("dev", "abalone", 5, 1)
	e.Deploy("prod", "abalone", 4, 2)
	approvals := tab(t, ctx, e.URL+"/approvals")
	waitText(t, approvals, "#approvals", "Nothing is waiting for approval")
	list := tab(t, ctx, e.URL+"/releases")
	r, err := e.Client("prod").StartRelease(bg, releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindPromote,
		Version: releases.Version{Number: 5}, PreviousVersion: &releases.Version{Number: 4}, EndpointConfigName: "abalone-prod-v5", InstanceType: "ml.m5.xlarge", InstanceCount: 2})
	must(t, err)
	if r.Status != releases.StatusPending {
		t.Fatalf("a promotion of a new version into prod is %s, want pending", r.Status)
	}
	waitText(t, approvals, "#pending-count", "1")
	row := func(name string) string {
		return fmt.Sprintf(`[data-release=%q] [data-row=%q]`, r.ID, name)
	}
	if s := waitText(t, approvals, row("version"), "v5"); !strings.Contains(s, "v4") || !strings.Contains(s, "changes") {
		t.Fatalf("version row: %q", s)
	}
	if s := waitText(t, approvals, row("config"), "abalone-prod-v5"); !strings.Contains(s, "changes") {
		t.Fatalf("configuration row: %q", s)
	}
	if s := waitText(t, approvals, row("instances"), "2 × ml.m5.xlarge"); !strings.Contains(s, "2 × ml.m5.large") {
		t.Fatalf("instances row: %q", s)
	}
	sameLoad(t, approvals, "approvals page")
	waitText(t, list, fmt.Sprintf("[data-release=%q]", r.ID), "Awaiting approval")
	sameLoad(t, list, "releases list")
	// The release's own page shows the same comparison above its Approve button.
	must(t, chromedp.Do(list, chromedp.Navigate(e.URL+"/releases/"+r.ID)))
	waitText(t, list, "#approval [data-row=instances]", "2 × ml.m5.xlarge")

	// Approving it elsewhere (the API) clears the page and the badge.
	res := e.Do(http.MethodPost, "/api/v1/releases/"+r.ID+"/approve", servertest.Basic("ops", e.AddUser("ops", "deployer")), nil)
	if res.Status != http.StatusOK {
		t.Fatalf("approve: %d %s", res.Status, res.Body)
	}
	waitText(t, approvals, "#approvals", "Nothing is waiting for approval")
	waitGone(t, approvals, "#pending-count")
	sameLoad(t, approvals, "approvals page")
}
