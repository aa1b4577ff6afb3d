package web_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sagedeploy/sagedeploy/internal/browsertest"
	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// overflowJS measures the page: the document's width, the viewport's, and the elements reaching
// past the viewport's right edge (to say what to fix when the test fails).
const overflowJS = `(function(){
  var vw = window.innerWidth, out = [];
  document.querySelectorAll('body *').forEach(function(el){
    var r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= vw + 0.5) return;
    for (var p = el.parentElement; p; p = p.parentElement) {
      var ox = getComputedStyle(p).overflowX;
      if (ox === 'auto' || ox === 'scroll' || ox === 'hidden') return; // scrolls inside its own box
    }
    if (out.length < 5) out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.className && el.className.baseVal === undefined ? '.' + String(el.className).split(' ').join('.') : '') + ' right=' + Math.round(r.right));
  });
  return {doc: document.documentElement.scrollWidth, view: vw, wide: out};
})()`

type overflow struct {
	Doc  int      `json:"doc"`
	View int      `json:"view"`
	Wide []string `json:"wide"`
}

// TestBrowserPhoneWidthNoSideScroll opens every page at 420 px wide, as on a phone, with long
// model names, a gated promotion, a release with long messages and admin settings: no page is
// wider than the screen (tables scroll inside their own box, the nav fits the header).
func TestBrowserPhoneWidthNoSideScroll(t *testing.T) {
	e := servertest.Start(t, servertest.Options{Server: server.Options{StreamPoll: 200 * time.Millisecond}, Environments: []releases.Environment{
		{Name: "dev", Kind: "local", EndpointURL: "http://127.0.0.1:4570", Position: 0},
		{Name: "staging", Kind: "sagemaker", Region: "eu-west-1", Account: "123456789012", Position: 1},
		{Name: "production", Kind: "sagemaker", Region: "ap-southeast-2", Account: "123456789012", Position: 2, RequiresApproval: true},
	}})
	long := "customer-lifetime-value-regressor"
	for _, m := range []string{"abalone", long} {
		e.Deploy("dev", m, 3, 1)
		e.Deploy("staging", m, 2, 2)
		e.Deploy("production", m, 1, 4)
	}
	r, err := e.Client("production").StartRelease(bg, releases.ReleaseStart{Environment: "production", Model: long, Kind: releases.KindPromote,
		Version:         releases.Version{Number: 2, ModelPackageARN: "arn:aws:sagemaker:ap-southeast-2:123456789012:model-package/" + long + "/2"},
		PreviousVersion: &releases.Version{Number: 1}, EndpointConfigName: long + "-production-v2-pipeline-123456", Trigger: releases.Trigger{Type: "pipeline", PipelineID: "build-98123"}})
	must(t, err)
	dev := e.Client("dev")
	d, err := dev.StartRelease(bg, releases.ReleaseStart{Environment: "dev", Model: long, Kind: releases.KindDeploy, Version: releases.Version{Number: 4},
		EndpointName: long + "-dev", EndpointConfigName: long + "-dev-v4-pipeline-123456789", InstanceType: "ml.m5.large", InstanceCount: 1})
	must(t, err)
	_, err = dev.AddEvent(bg, d.ID, releases.Event{Phase: "endpoint", Message: "updating endpoint " + long + "-dev to endpoint config " + long + "-dev-v4-pipeline-123456789", EndpointStatus: "Updating"})
	must(t, err)

	ctx := browsertest.New(t, 90*time.Second)
	must(t, chromedp.Do(ctx, chromedp.EmulateViewport(420, 900)))
	must(t, browsertest.SignIn(ctx, e.URL, "admin", e.AdminPassword))
	pages := []struct{ name, path, ready string }{
		{"overview", "/", "#overview"},
		{"releases", "/releases", "#releases-list"},
		{"a release", "/releases/" + d.ID, "#events"},
		{"a component", "/components/dev/" + long, "#history"},
		{"approvals", "/approvals", fmt.Sprintf("[data-release=%q]", r.ID)},
		{"audit", "/audit", "#audit"},
		{"settings", "/settings", "#tokens"},
	}
	for _, p := range pages {
		must(t, chromedp.Do(ctx, chromedp.Navigate(e.URL+p.path)))
		waitText(t, ctx, p.ready, "")
		o, err := browsertest.Eval[overflow](ctx, overflowJS)
		must(t, err)
		if o.View != 420 {
			t.Fatalf("%s: the viewport is %d px wide, want 420", p.name, o.View)
		}
		if o.Doc > o.View || len(o.Wide) > 0 {
			t.Errorf("%s at %d px is %d px wide; too wide: %s", p.name, o.View, o.Doc, strings.Join(o.Wide, ", "))
		}
		if p.name == "overview" || p.name == "a component" || p.name == "approvals" {
			if path, err := browsertest.Screenshot(ctx, "sagedeploy-phone-"+strings.ReplaceAll(p.name, " ", "-")+".png"); err == nil {
				t.Logf("%s at 420 px: %s", p.name, path)
			}
		}
	}
	// The nav fits the header: every link is inside the top bar's box.
	inside, err := browsertest.Eval[bool](ctx, `(function(){var h=document.querySelector('.topbar').getBoundingClientRect();
	  return Array.prototype.every.call(document.querySelectorAll('.topbar nav a'), function(a){var r=a.getBoundingClientRect();return r.top>=h.top&&r.bottom<=h.bottom;})})()`)
	must(t, err)
	if !inside {
		t.Error("at 420 px the nav's links spill out of the header")
	}
}
