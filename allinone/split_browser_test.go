package allinone_test

import (
	"cmp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/allinone"
	"github.com/sagedeploy/sagedeploy/allinone/allinonetest"
	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/internal/browsertest"
	"github.com/sagedeploy/sagedeploy/releases/server"
)

// recordSplit makes the page remember every traffic split its live refresh shows, so that a
// test can tell the steps it went through, however fast they passed.
const recordSplit = `(function(){
  window.__splits = [];
  function note(){ var e=document.getElementById("traffic-split"); var p=e&&e.getAttribute("data-new-percent");
    if (p!==null && p!==undefined && window.__splits[window.__splits.length-1]!==p) window.__splits.push(p); }
  note(); document.addEventListener("live:swapped", note); return true })()`

func cmpPercent(a, b string) int {
	x, _ := strconv.ParseFloat(a, 64)
	y, _ := strconv.ParseFloat(b, 64)
	return cmp.Compare(x, y)
}

// TestBrowserSplitBarFollowsACanary deploys v2 of abalone to dev over v1 as a 20% canary with
// the real deployer against the stack's local SageMaker, with the component page and then the
// release page open and never reloaded: the split bar shows the canary (new v2: 20%), then all
// traffic on v2, as the shifts happen.
func TestBrowserSplitBarFollowsACanary(t *testing.T) {
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
	must(t, browsertest.SignIn(ctx, s.ServerURL(), login.User, login.Password))
	comp := openTab(t, ctx, s.ServerURL()+"/components/dev/abalone")
	waitText(t, comp, "#current-version", "v1")
	if _, err := browsertest.Eval[bool](comp, recordSplit); err != nil {
		t.Fatal(err)
	}

	// The bake is long enough for a person to see the canary; the test waits on the page only.
	done := make(chan error, 1)
	go func() {
		_, err := dev.Deploy(bg, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 2,
			Strategy: deploy.Strategy{Type: deploy.Canary, Percent: 20, Bake: 6 * time.Second}})
		done <- err
	}()
	waitText(t, comp, "#split-text", "new v2: 20%")
	waitText(t, comp, "#split-text", "old v1: 80%")
	href, err := browsertest.Eval[string](comp, `document.querySelector("#active-release").getAttribute("href")`)
	must(t, err)
	rel := openTab(t, ctx, s.ServerURL()+href)
	if _, err := browsertest.Eval[bool](rel, recordSplit); err != nil {
		t.Fatal(err)
	}
	waitText(t, rel, "#traffic-split svg title", "new v2: 20% · old v1: 80%")
	must(t, <-done)
	waitText(t, rel, "#split-text", "new v2: 100%")
	waitText(t, rel, "#split-text", "done")
	_, err = browsertest.WaitFor(comp, "the component page to drop the split bar once the release ended", func() (bool, bool, error) {
		bar, err := browsertest.Eval[bool](comp, `!!document.querySelector("#traffic-split svg")`)
		return bar, err == nil && !bar, nil
	})
	must(t, err)
	notReloaded(t, comp, "component page")
	notReloaded(t, rel, "release page")

	compSeen, err := browsertest.Eval[[]string](comp, `window.__splits`)
	must(t, err)
	relSeen, err := browsertest.Eval[[]string](rel, `window.__splits`)
	must(t, err)
	t.Logf("split steps seen: component page %v, release page %v", compSeen, relSeen)
	if !slices.Contains(compSeen, "20") || !slices.IsSortedFunc(compSeen, cmpPercent) {
		t.Errorf("the component page's split went %v; want up through 20", compSeen)
	}
	if len(relSeen) == 0 || relSeen[0] != "20" || relSeen[len(relSeen)-1] != "100" || !slices.IsSortedFunc(relSeen, cmpPercent) {
		t.Errorf("the release page's split went %v; want 20 then up to 100", relSeen)
	}
}
