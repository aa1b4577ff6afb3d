package allinone_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sagedeploy/sagedeploy/allinone"
	"github.com/sagedeploy/sagedeploy/allinone/allinonetest"
	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/internal/browsertest"
	"github.com/sagedeploy/sagedeploy/releases/server"
)

// openTab opens url in a new tab of the signed-in browser and marks the load, so that a reload
// would show (the mark would be gone).
func openTab(t *testing.T, parent context.Context, url string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(parent)
	t.Cleanup(cancel)
	must(t, chromedp.Do(ctx, chromedp.Navigate(url)))
	_, err := browsertest.Eval[bool](ctx, `window.__sameLoad = true`)
	must(t, err)
	return ctx
}

func notReloaded(t *testing.T, ctx context.Context, page string) {
	t.Helper()
	if same, err := browsertest.Eval[bool](ctx, `window.__sameLoad === true`); err != nil || !same {
		t.Fatalf("the %s reloaded instead of updating live", page)
	}
}

// TestBrowserPagesFollowTheEndpoint keeps the overview and dev's component page open, never
// reloaded, while the real deployer and the stack's agent change abalone-dev on the local
// SageMaker: a deploy whose verification fails (the overview shows what the endpoint serves, in
// service, and the failed release beside it), a deploy that succeeds, a scale and a rollback.
func TestBrowserPagesFollowTheEndpoint(t *testing.T) {
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
	overview := openTab(t, ctx, s.ServerURL()+"/")
	comp := openTab(t, ctx, s.ServerURL()+"/components/dev/abalone")
	cell := `[data-component="dev/abalone"]`
	waitText(t, overview, cell+" [data-serving]", "v1")
	waitText(t, comp, "#current-version", "v1")

	// 1. v2 as a canary whose verification expects answers no abalone model gives.
	failing := make(chan error, 1)
	go func() {
		_, err := dev.Deploy(bg, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 2,
			Strategy: deploy.Strategy{Type: deploy.Canary, Percent: 50, Bake: 2 * time.Second},
			Verify:   &deploy.Verification{Body: abalone.SampleCSV(), ContentType: "text/csv", Expect: deploy.MustParseExpectation("100..200")}})
		failing <- err
	}()
	if r := waitText(t, overview, cell+" .cell-release", "Running"); !strings.Contains(r, "deploy v2") {
		t.Fatalf("the overview during the deploy of v2: %q", r)
	}
	waitText(t, comp, "#active-release", "deploy")
	if err := <-failing; err == nil {
		t.Fatal("the deploy with a failing verification succeeded")
	}
	served := allinonetest.Describe(t, s, "abalone-dev")
	if served.Status != "InService" {
		t.Fatalf("abalone-dev after the failed verification: %+v", served)
	}
	want := fmt.Sprintf("v%d", served.Version)
	top := waitText(t, overview, cell+" .cell-top", want)
	if !strings.Contains(top, "In service") || strings.Contains(top, "Failed") {
		t.Fatalf("abalone-dev serves %s in service; the overview says %q", want, top)
	}
	waitText(t, overview, cell+" .cell-release", "Failed")
	waitText(t, comp, "#current-version", want)
	waitText(t, comp, "#component-status", "In service")

	// 2. v2 again, verified with what it answers.
	_, err = dev.Deploy(bg, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 2,
		Verify: &deploy.Verification{Body: abalone.SampleCSV(), ContentType: "text/csv", Expect: deploy.MustParseExpectation("1..30")}})
	must(t, err)
	waitText(t, overview, cell+" [data-serving]", "v2")
	waitText(t, comp, "#current-version", "v2")
	waitText(t, comp, "#rollback", "Roll back to v1")

	// 3. Scale to 2 instances, asked through the API: the open pages follow the agent's work.
	if code := allinonetest.API(t, s, login.User, login.Password, http.MethodPost, "/api/v1/components/dev/abalone/scale", map[string]int{"instances": 2}, nil); code != http.StatusAccepted {
		t.Fatalf("scale: HTTP %d", code)
	}
	waitText(t, comp, "#instance-count", "2")
	waitText(t, overview, cell+" [data-instances]", "2")

	// 4. Roll back to v1.
	if code := allinonetest.API(t, s, login.User, login.Password, http.MethodPost, "/api/v1/components/dev/abalone/rollback", nil, nil); code != http.StatusAccepted {
		t.Fatalf("rollback: HTTP %d", code)
	}
	waitText(t, comp, "#current-version", "v1")
	waitText(t, overview, cell+" [data-serving]", "v1")
	allinonetest.WaitFor(t, 30*time.Second, "abalone-dev to serve v1 again", func() bool {
		d := allinonetest.Describe(t, s, "abalone-dev")
		return d.Version == 1 && d.Status == "InService"
	})
	notReloaded(t, overview, "overview")
	notReloaded(t, comp, "component page")
}
