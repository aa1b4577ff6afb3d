package allinone_test

import (
	"context"
	"fmt"
	"image/png"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/sagedeploy/sagedeploy/allinone"
	"github.com/sagedeploy/sagedeploy/allinone/allinonetest"
	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/internal/browsertest"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

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

// pageStatus is the release page's status, as its live updates set it.
func pageStatus(ctx context.Context) string {
	s, err := browsertest.Eval[*string](ctx, `(function(){var e=document.querySelector('#release-status');return e?e.getAttribute('data-status'):null})()`)
	if err != nil || s == nil {
		return ""
	}
	return *s
}

func waitStatus(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	_, err := browsertest.WaitFor(ctx, "release status "+want, func() (string, bool, error) {
		s := pageStatus(ctx)
		return s, s == want, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestBrowserEndToEnd drives the dashboard of a real all-in-one stack in Chromium while the real
// deployer and the stack's agent change real endpoints of the local SageMaker: a deploy shows up
// live, a promotion waits for a click on the approvals page, Rollback and Scale on the component
// page change what the endpoint serves.
func TestBrowserEndToEnd(t *testing.T) {
	s := allinonetest.Start(t, allinone.Options{Server: server.Options{StreamPoll: 200 * time.Millisecond}})
	login := s.AdminLogin()
	dev, err := s.Deployer(bg, "dev", deploy.Options{})
	must(t, err)
	for _, v := range abalone.Versions() {
		data, _ := abalone.Artifact(v)
		_, err := dev.Register(bg, deploy.RegisterRequest{Model: "abalone", Artifact: "model.tar.gz", ArtifactData: data, Bucket: "models", Approve: true})
		must(t, err)
	}
	_, err = dev.Deploy(bg, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 1})
	must(t, err)

	ctx := browsertest.New(t, 120*time.Second)
	browsertest.AcceptDialogs(ctx)
	must(t, browsertest.SignIn(ctx, s.ServerURL(), login.User, login.Password))
	waitText(t, ctx, `[data-component="dev/abalone"]`, "v1")

	// 1. A deploy of v2 as a canary that bakes for a few seconds: its release page, opened while
	// it runs, follows it to the end without a reload.
	deployed := make(chan error, 1)
	go func() {
		_, err := dev.Deploy(bg, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 2,
			Strategy: deploy.Strategy{Type: deploy.Canary, Percent: 50, Bake: 3 * time.Second}})
		deployed <- err
	}()
	var rel *store.ReleaseRecord
	allinonetest.WaitFor(t, 30*time.Second, "the deploy of v2 to start its release", func() bool {
		rel, _ = s.Store().ActiveRelease(bg, "dev", "abalone")
		return rel != nil
	})
	must(t, chromedp.Do(ctx, chromedp.Navigate(s.ServerURL()+"/releases/"+rel.ID)))
	waitText(t, ctx, "h1", "Deploy of abalone v2 in dev")
	if st := pageStatus(ctx); st != "running" {
		t.Fatalf("the release page opened during the deploy shows %q, want running", st)
	}
	_, err = browsertest.Eval[bool](ctx, `window.__sameLoad = true`)
	must(t, err)
	atLoad, err := browsertest.Eval[int](ctx, `document.querySelectorAll('#events li').length`)
	must(t, err)
	waitText(t, ctx, "#live", "live")
	waitStatus(t, ctx, "succeeded")
	must(t, <-deployed)
	final, err := s.Store().Events(bg, rel.ID, 0)
	must(t, err)
	_, err = browsertest.WaitFor(ctx, "every event of the release on the page", func() (int, bool, error) {
		n, err := browsertest.Eval[int](ctx, `document.querySelectorAll('#events li').length`)
		return n, err == nil && n == len(final), nil
	})
	must(t, err)
	if atLoad >= len(final) {
		t.Fatalf("all %d events were on the page at load (%d): none arrived live", len(final), atLoad)
	}
	if same, err := browsertest.Eval[bool](ctx, `window.__sameLoad === true`); err != nil || !same {
		t.Fatal("the release page reloaded instead of updating live")
	}
	allinonetest.ExpectServes(t, s, "abalone-dev", 2)

	// 2. Promote dev's v2 to prod from dev's page; prod's gate holds it until it is approved on
	// the approvals page; then the agent promotes and prod serves v2.
	comp := s.ServerURL() + "/components/dev/abalone"
	must(t, chromedp.Do(ctx, chromedp.Navigate(comp)))
	waitText(t, ctx, "#current-version", "v2")
	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#promote"))))
	// The click's form post lands on the new release's page: wait for it, or the navigation below
	// races the post's redirect and Chromium aborts one of them (net::ERR_ABORTED).
	waitText(t, ctx, "#flash", "requires an approval")
	var pending []store.ReleaseRecord
	allinonetest.WaitFor(t, 30*time.Second, "the promotion to wait for an approval", func() bool {
		pending, _ = s.Store().PendingApprovals(bg)
		return len(pending) == 1
	})
	if pending[0].Environment != "prod" || pending[0].Kind != releases.KindPromote || pending[0].Version.Number != 2 {
		t.Fatalf("pending: %+v", pending[0])
	}
	must(t, chromedp.Do(ctx, chromedp.Navigate(s.ServerURL()+"/approvals")))
	waitText(t, ctx, "#approvals", "abalone")
	// Four eyes: admin asked for the promotion, so admin's click is refused, naming the rule;
	// another deployer, signed in in the same browser, approves it.
	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-approve=%q]`, pending[0].ID)))))
	waitText(t, ctx, "#flash-error", "four-eyes rule of environment prod")
	erinPW, err := server.AddUser(bg, s.Store(), "erin", store.RoleDeployer, "", bcrypt.MinCost)
	must(t, err)
	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form[action="/logout"] button`))))
	waitText(t, ctx, "#sign-in", "")
	must(t, browsertest.SignIn(ctx, s.ServerURL(), "erin", erinPW))
	must(t, chromedp.Do(ctx, chromedp.Navigate(s.ServerURL()+"/approvals")))
	waitText(t, ctx, "#approvals", "abalone")
	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS(fmt.Sprintf(`[data-approve=%q]`, pending[0].ID)))))
	waitText(t, ctx, "#flash", "Approved")
	must(t, chromedp.Do(ctx, chromedp.Navigate(s.ServerURL()+"/releases/"+pending[0].ID)))
	waitStatus(t, ctx, "succeeded")
	allinonetest.ExpectServes(t, s, "abalone-prod", 2)

	// 3. Roll dev back (v2 → v1) with the button on its page.
	must(t, chromedp.Do(ctx, chromedp.Navigate(comp)))
	waitText(t, ctx, "#rollback", "Roll back to v1")
	must(t, chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#rollback"))))
	waitText(t, ctx, "#flash", "Rollback to v1")
	waitStatus(t, ctx, "succeeded")
	allinonetest.ExpectServes(t, s, "abalone-dev", 1)

	// 4. Scale dev to 2 instances.
	if n := allinonetest.Describe(t, s, "abalone-dev").Instances; n != 1 {
		t.Fatalf("abalone-dev runs %d instances before scaling, want 1", n)
	}
	must(t, chromedp.Do(ctx, chromedp.Navigate(comp)))
	waitText(t, ctx, "#current-version", "v1")
	must(t, chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#instances"), "2"),
		chromedp.Click(chromedp.CSS("#scale")),
	))
	waitStatus(t, ctx, "succeeded")
	if d := allinonetest.Describe(t, s, "abalone-dev"); d.Instances != 2 || d.Status != "InService" || d.Version != 1 {
		t.Fatalf("abalone-dev after scaling: %+v, want 2 instances of version 1 InService", d)
	}
	must(t, chromedp.Do(ctx, chromedp.Navigate(comp)))
	waitText(t, ctx, "#instance-count", "2")

	// The overview shows it all; keep a picture of it.
	must(t, chromedp.Do(ctx, chromedp.Navigate(s.ServerURL()+"/")))
	waitText(t, ctx, `[data-component="prod/abalone"]`, "v2")
	if cell := waitText(t, ctx, `[data-component="dev/abalone"]`, "v1"); !strings.Contains(cell, "2 ×") {
		t.Fatalf("dev's cell on the overview: %q", cell)
	}
	path, err := browsertest.Screenshot(ctx, "sagedeploy-e2e-overview.png")
	must(t, err)
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil || img.Bounds().Dx() < 1000 {
		t.Fatalf("the overview screenshot %s is not a full-width PNG: %v", path, err)
	}
	t.Logf("overview screenshot: %s", path)
}
