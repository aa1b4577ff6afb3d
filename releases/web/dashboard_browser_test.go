package web_test

import (
	"context"
	"errors"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sagedeploy/sagedeploy/agent"
	"github.com/sagedeploy/sagedeploy/internal/browsertest"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

var bg = context.Background()

// start runs a release server with a fast stream poll and a signed-in browser tab.
func start(t *testing.T) (*servertest.Env, context.Context) {
	t.Helper()
	e := servertest.Start(t, servertest.Options{Server: server.Options{StreamPoll: 200 * time.Millisecond}})
	ctx := browsertest.New(t, 90*time.Second)
	browsertest.AcceptDialogs(ctx)
	if err := browsertest.SignIn(ctx, e.URL, "admin", e.AdminPassword); err != nil {
		t.Fatal(err)
	}
	return e, ctx
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func waitText(t *testing.T, ctx context.Context, sel, want string) string {
	t.Helper()
	s, err := browsertest.WaitText(ctx, sel, want)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func waitStatus(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	_, err := browsertest.WaitFor(ctx, "release status "+want, func() (string, bool, error) {
		s, err := browsertest.Eval[*string](ctx, `(function(){var e=document.querySelector('#release-status');return e?e.getAttribute('data-status'):null})()`)
		if err != nil || s == nil {
			return "", false, nil
		}
		return *s, *s == want, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestBrowserSignInAndOverviewScreenshot(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Environments: []releases.Environment{
		{Name: "dev", Kind: "local", EndpointURL: "http://127.0.0.1:4570", Position: 0},
		{Name: "staging", Kind: "sagemaker", Region: "eu-west-1", Position: 1},
		{Name: "prod", Kind: "sagemaker", Region: "eu-west-1", Position: 2, RequiresApproval: true},
	}})
	for _, m := range []struct {
		model string
		dev   int
		stg   int
		prod  int
	}{{"abalone", 7, 6, 5}, {"churn-predictor", 3, 3, 2}, {"fraud-score", 12, 11, 0}} {
		for v := 1; v <= m.dev; v++ {
			e.Deploy("dev", m.model, v, 1)
		}
		if m.stg > 0 {
			e.Deploy("staging", m.model, m.stg, 2)
		}
		if m.prod > 0 {
			e.Deploy("prod", m.model, m.prod, 4)
		}
	}
	// Some life on the page: a failed deploy, a running one and one waiting for approval.
	c := e.Client("staging")
	f, _ := c.StartRelease(bg, releases.ReleaseStart{Environment: "staging", Model: "abalone", Kind: releases.KindDeploy, Version: releases.Version{Number: 7}})
	c.FinishRelease(bg, f.ID, releases.ReleaseFinish{Status: releases.StatusFailed, FailureReason: "endpoint health check failed"})
	c.StartRelease(bg, releases.ReleaseStart{Environment: "staging", Model: "fraud-score", Kind: releases.KindDeploy, Version: releases.Version{Number: 12}})
	e.Client("prod").StartRelease(bg, releases.ReleaseStart{Environment: "prod", Model: "fraud-score", Kind: releases.KindPromote, Version: releases.Version{Number: 11}})

	ctx := browsertest.New(t, 90*time.Second)
	// A wrong password shows an error and keeps the visitor out.
	err := browsertest.SignIn(ctx, e.URL, "admin", "not-the-password")
	if err == nil || !strings.Contains(err.Error(), "Wrong user name or password") {
		t.Fatalf("sign-in with a wrong password: %v", err)
	}
	must(t, browsertest.SignIn(ctx, e.URL, "admin", e.AdminPassword))
	waitText(t, ctx, "#overview", "abalone")
	cell := waitText(t, ctx, `[data-component="prod/abalone"]`, "v5")
	if !strings.Contains(cell, "4 × ml.m5.large") || !strings.Contains(cell, "In service") {
		t.Fatalf("prod/abalone cell: %q", cell)
	}
	if s := waitText(t, ctx, `[data-component="staging/abalone"]`, "v6"); !strings.Contains(s, "Failed") {
		t.Fatalf("staging/abalone after a failed deploy: %q", s)
	}
	if s := waitText(t, ctx, `[data-component="staging/fraud-score"]`, "v11"); !strings.Contains(s, "Running") {
		t.Fatalf("staging/fraud-score during a deploy: %q", s)
	}
	waitText(t, ctx, "#approvals-callout", "1 release waiting for approval")
	path, err := browsertest.Screenshot(ctx, "sagedeploy-overview.png")
	must(t, err)
	t.Logf("overview screenshot: %s", path)
	fh, err := os.Open(path)
	must(t, err)
	defer fh.Close()
	img, err := png.Decode(fh)
	if err != nil || img.Bounds().Dx() < 1000 {
		t.Fatalf("screenshot is not a full-width PNG: %v %v", img.Bounds(), err)
	}
}

func TestBrowserReleaseProgressAppearsLive(t *testing.T) {
	e, ctx := start(t)
	dev := e.Client("dev")
	r, err := dev.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: "abalone", Kind: releases.KindDeploy,
		Version: releases.Version{Number: 2}, EndpointName: "abalone-dev", InstanceType: "ml.m5.large", InstanceCount: 1})
	must(t, err)
	dev.AddEvent(bg, r.ID, releases.Event{Phase: "model", Message: "created model abalone-v2"})
	must(t, chromedp.Do(ctx, chromedp.Navigate(e.URL+"/releases/"+r.ID)))
	waitText(t, ctx, "#events", "created model abalone-v2")
	waitStatus(t, ctx, "running")
	// Mark this page load: if the page reloaded, the mark would be gone.
	_, err = browsertest.Eval[bool](ctx, `window.__sameLoad = true`)
	must(t, err)
	waitText(t, ctx, "#live", "live")

	// The deployer reports while the page is open.
	for _, ev := range []releases.Event{
		{Phase: "endpoint-config", Message: "created endpoint config abalone-dev-v2"},
		{Phase: "wait", Message: "endpoint abalone-dev is Updating", EndpointStatus: "Updating"},
	} {
		_, err := dev.AddEvent(bg, r.ID, ev)
		must(t, err)
		waitText(t, ctx, "#events", ev.Message)
	}
	two := releases.Version{Number: 2}
	_, err = dev.FinishRelease(bg, r.ID, releases.ReleaseFinish{Status: releases.StatusFailed, Reason: releases.ReasonRolledBack, FailureReason: "ModelError: the container exited", ServingVersion: &releases.Version{Number: 1}})
	must(t, err)
	_ = two
	waitStatus(t, ctx, "failed")
	waitText(t, ctx, "#failure", "ModelError: the container exited")
	// The typed reason arrives with the same live update.
	waitText(t, ctx, "#release-reason", "rolled back by SageMaker")
	if d := waitText(t, ctx, "#release-duration", "s"); d == "—" {
		t.Fatalf("duration after the end: %q", d)
	}
	if path, err := browsertest.Screenshot(ctx, "sagedeploy-release.png"); err == nil {
		t.Logf("release page screenshot: %s", path)
	}
	same, err := browsertest.Eval[bool](ctx, `window.__sameLoad === true`)
	if err != nil || !same {
		t.Fatal("the page reloaded instead of updating live")
	}
	n, err := browsertest.Eval[int](ctx, `document.querySelectorAll('#events li').length`)
	if err != nil || n != 3 {
		t.Fatalf("%d events on the page, want 3 (no duplicates)", n)
	}
}

func TestBrowserApprovePendingPromotion(t *testing.T) {
	e, ctx := start(t)
	e.Deploy("dev", "abalone", 4, 1)
	prod := e.Client("prod")
	r, err := prod.StartRelease(bg, releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindPromote, Version: releases.Version{Number: 4},
		Trigger: releases.Trigger{Type: "pipeline", PipelineID: "build-981"}})
	must(t, err)
	if r.Status != releases.StatusPending {
		t.Fatalf("promotion into prod is %s, want pending", r.Status)
	}
	waited := make(chan releases.Release, 1)
	go func() {
		rr, _ := prod.WaitApproval(bg, r.ID, 50*time.Millisecond)
		waited <- rr
	}()

	must(t, chromedp.Do(ctx, chromedp.Navigate(e.URL+"/approvals")))
	waitText(t, ctx, "#approvals", "build-981")
	waitText(t, ctx, "#pending-count", "1")
	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-approve=%q]`, r.ID)))))
	waitText(t, ctx, "#flash", "Approved: promote of abalone v4 into prod")
	waitText(t, ctx, "#approvals", "Nothing is waiting for approval")
	select {
	case rr := <-waited:
		if rr.Status != releases.StatusRunning || rr.ApprovedBy != "admin" {
			t.Fatalf("deployer saw %s approved by %q", rr.Status, rr.ApprovedBy)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting deployer never saw the approval")
	}
	entries, _ := e.Store.Audit(bg, 20, 0)
	found := false
	for _, a := range entries {
		found = found || (a.Action == "release.approve" && a.Actor == "admin" && a.Target == r.ID && a.Outcome == "ok")
	}
	if !found {
		t.Fatal("the approval is not in the audit log")
	}
	must(t, chromedp.Do(ctx, chromedp.Navigate(e.URL+"/audit")))
	waitText(t, ctx, "#audit", "release.approve")
}

// deployerLike executes commands the way the deployer does, reporting through the real client.
type deployerLike struct{ delay time.Duration }

func (d deployerLike) Execute(ctx context.Context, c *releases.Client, cmd releases.Command) error {
	if c == nil {
		return errors.New("no client")
	}
	kind := map[releases.CommandKind]releases.Kind{releases.CommandRestore: releases.KindRestore, releases.CommandRollback: releases.KindRestore,
		releases.CommandScale: releases.KindScale, releases.CommandPromote: releases.KindPromote}[cmd.Kind]
	st := releases.ReleaseStart{ID: cmd.ReleaseID, Environment: cmd.Environment, Model: cmd.Model, Kind: kind}
	if cmd.Version > 0 {
		st.Version = releases.Version{Number: cmd.Version}
	}
	if _, err := c.StartRelease(ctx, st); err != nil {
		return err
	}
	if _, err := c.AddEvent(ctx, cmd.ReleaseID, releases.Event{Phase: "wait", Message: "endpoint " + cmd.Model + "-" + cmd.Environment + " is Updating", EndpointStatus: "Updating"}); err != nil {
		return err
	}
	time.Sleep(d.delay) // SageMaker takes a while; the page should show it running meanwhile
	fin := releases.ReleaseFinish{Status: releases.StatusSucceeded, EndpointStatus: "InService", InstanceCount: cmd.Instances}
	if cmd.Version > 0 {
		fin.ServingVersion = &releases.Version{Number: cmd.Version}
	}
	_, err := c.FinishRelease(ctx, cmd.ReleaseID, fin)
	return err
}

func TestBrowserComponentCommandsRunThroughAnAgent(t *testing.T) {
	e, ctx := start(t)
	for v := 1; v <= 3; v++ {
		e.Deploy("dev", "abalone", v, 1)
	}
	comp := e.URL + "/components/dev/abalone"

	// Scale with no agent running: the command is queued and says so.
	must(t, chromedp.Do(ctx, chromedp.Navigate(comp)))
	waitText(t, ctx, "#current-version", "v3")
	must(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#instances"), "3"),
		chromedp.Click(chromedp.CSS("#scale")),
	))
	waitText(t, ctx, "#flash", "Scaling to 3 instance(s) queued: waiting for an agent of dev")
	waitStatus(t, ctx, "pending")
	waitText(t, ctx, "#command-state", "queued")

	// An agent starts; the page follows the command to its end without a reload.
	actx, stop := context.WithCancel(bg)
	agentDone := make(chan error, 1)
	go func() {
		agentDone <- agent.Run(actx, agent.Options{Clients: []*releases.Client{e.Client("dev")}, Executor: deployerLike{delay: 300 * time.Millisecond},
			Logger: servertest.TestLogger(t), PollWait: 5 * time.Second})
	}()
	t.Cleanup(func() { stop(); <-agentDone })
	waitText(t, ctx, "#events", "took the command")
	waitStatus(t, ctx, "succeeded")
	waitText(t, ctx, "#events", "abalone-dev is Updating")
	must(t, chromedp.Do(ctx, chromedp.Navigate(comp)))
	waitText(t, ctx, "#instance-count", "3")

	// Roll back (confirmed in the dialog): v3 → v2.
	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#rollback"))))
	waitText(t, ctx, "#flash", "Rollback to v2")
	waitStatus(t, ctx, "succeeded")
	must(t, chromedp.Do(ctx, chromedp.Navigate(comp)))
	waitText(t, ctx, "#current-version", "v2")

	// Restore v1 from the history.
	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`[data-restore="1"]`))))
	waitText(t, ctx, "#flash", "Restore of v1")
	waitStatus(t, ctx, "succeeded")
	must(t, chromedp.Do(ctx, chromedp.Navigate(comp)))
	waitText(t, ctx, "#current-version", "v1")
	if path, err := browsertest.Screenshot(ctx, "sagedeploy-component.png"); err == nil {
		t.Logf("component page screenshot: %s", path)
	}
	c, err := e.Store.Component(bg, "dev", "abalone")
	must(t, err)
	if c.CurrentVersion.Number != 1 || c.InstanceCount != 3 {
		t.Fatalf("component after the commands: v%d, %d instances", c.CurrentVersion.Number, c.InstanceCount)
	}
	// A refused command shows why on the component page.
	must(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#instances"), "3"),
		chromedp.Click(chromedp.CSS("#scale")),
	))
	waitText(t, ctx, "#flash-error", "already runs 3 instance(s)")
}

func TestBrowserForgedFormIsRejected(t *testing.T) {
	e, ctx := start(t)
	e.Deploy("dev", "abalone", 1, 1)
	// Another site (another origin on this machine) posts a form to the dashboard; the browser
	// sends the session cookie along (same site), but not the page's CSRF token.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/components/dev/abalone/scale">
<input name="instances" value="9"><input name="csrf" value="forged-token"></form>
<script>document.getElementById('f').submit()</script>`, e.URL)
	}))
	defer evil.Close()
	must(t, chromedp.Do(ctx, chromedp.Navigate(evil.URL)))
	waitText(t, ctx, "#error-message", "CSRF")
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, e.URL) {
		t.Fatalf("ended at %s", loc)
	}
	cmds, err := e.Store.Commands(bg, "", 10)
	must(t, err)
	if len(cmds) != 0 {
		t.Fatalf("the forged form created %d command(s)", len(cmds))
	}
	entries, _ := e.Store.Audit(bg, 10, 0)
	if len(entries) == 0 || entries[0].Action != "csrf.rejected" || entries[0].Actor != "admin" {
		t.Fatalf("the rejection is not audited: %+v", entries)
	}
	// The real form from the dashboard still works.
	must(t, chromedp.Do(ctx, chromedp.Navigate(e.URL+"/components/dev/abalone")))
	must(t, chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#instances"), "2"), chromedp.Click(chromedp.CSS("#scale"))))
	waitText(t, ctx, "#flash", "queued")
	cmds, _ = e.Store.Commands(bg, "", 10)
	if len(cmds) != 1 || cmds[0].Instances != 2 || cmds[0].State != store.CommandQueued {
		t.Fatalf("commands after the real form: %+v", cmds)
	}
}
