package allinone_test

import (
	"bytes"
	"flag"
	"image/png"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sagedeploy/sagedeploy/allinone"
	"github.com/sagedeploy/sagedeploy/allinone/allinonetest"
	"github.com/sagedeploy/sagedeploy/deploy"
	"github.com/sagedeploy/sagedeploy/examples/abalone"
	"github.com/sagedeploy/sagedeploy/internal/browsertest"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
)

// updateScreenshot regenerates the README's picture of the dashboard:
//
//	go test -run TestScreenshotCanaryComponentPage ./allinone -args -update-screenshot
var updateScreenshot = flag.Bool("update-screenshot", false, "write the component page during a canary to docs/dashboard.png")

// docsScreenshot is the README's picture, relative to this package.
const docsScreenshot = "../docs/dashboard.png"

// TestScreenshotCanaryComponentPage takes the README's picture: dev's abalone component page in
// the middle of a 20% canary of v2, with the traffic-split bar and the traffic chart of the
// invocations v1 answered, at 1280×900. It checks the page shows both before taking it.
func TestScreenshotCanaryComponentPage(t *testing.T) {
	s := allinonetest.Start(t, allinone.Options{ObserveInterval: 200 * time.Millisecond, Server: server.Options{StreamPoll: 200 * time.Millisecond}})
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
	const calls = 12
	for range calls {
		allinonetest.Invoke(t, s, "abalone-dev", abalone.SampleCSV())
	}
	allinonetest.WaitFor(t, 30*time.Second, "the agent to report the invocations of dev/abalone", func() bool {
		pts, _ := s.Store().MetricPoints(bg, "dev", "abalone", time.Now().Add(-time.Hour))
		sum := 0.0
		for _, p := range pts {
			if p.Metric == releases.MetricInvocations {
				sum += p.Value
			}
		}
		return sum == calls
	})

	ctx := browsertest.New(t, 120*time.Second)
	must(t, browsertest.SignIn(ctx, s.ServerURL(), login.User, login.Password))
	must(t, chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900), chromedp.Navigate(s.ServerURL()+"/components/dev/abalone")))
	waitText(t, ctx, "#chart-traffic-w1-text", "12 invocations")

	done := make(chan error, 1)
	go func() {
		_, err := dev.Deploy(bg, deploy.DeployRequest{Model: "abalone", Environment: "dev", Version: 2,
			Strategy: deploy.Strategy{Type: deploy.Canary, Percent: 20, Bake: 8 * time.Second}})
		done <- err
	}()
	t.Cleanup(func() { <-done })
	waitText(t, ctx, "#split-text", "new v2: 20% · old v1: 80%")
	waitText(t, ctx, "#split-text", "baking")
	// The page is still: no hover.
	must(t, chromedp.Do(ctx, chromedp.MouseEvent("mouseMoved", 0, 0)))
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	must(t, err)
	img, err := png.Decode(bytes.NewReader(shot))
	must(t, err)
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 900 {
		t.Fatalf("the screenshot is %dx%d, want 1280x900", b.Dx(), b.Dy())
	}
	if path, err := browsertest.Screenshot(ctx, "component-canary.png"); err == nil {
		t.Logf("the component page during the canary: %s", path)
	}
	if *updateScreenshot {
		must(t, os.WriteFile(docsScreenshot, shot, 0o644))
		t.Logf("wrote %s (%d bytes)", docsScreenshot, len(shot))
	}
}
