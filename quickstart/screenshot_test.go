package quickstart_test

import (
	"bytes"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sagedeploy/sagedeploy/allinone"
	"github.com/sagedeploy/sagedeploy/allinone/allinonetest"
	"github.com/sagedeploy/sagedeploy/internal/browsertest"
	"github.com/sagedeploy/sagedeploy/quickstart"
)

// updateScreenshot regenerates the picture of the overview after a quickstart:
//
//	go test -run TestScreenshotAfterQuickstart ./quickstart -args -update-screenshot
var updateScreenshot = flag.Bool("update-screenshot", false, "write the overview after a quickstart run to docs/overview.png")

// docsScreenshot is the overview's picture, relative to this package.
const docsScreenshot = "../docs/overview.png"

// TestScreenshotAfterQuickstart runs the quickstart, signs in to the dashboard in Chromium and
// checks the overview shows what the run left (dev and prod on v1, the four releases), then keeps
// a 1280×800 picture of it as a test artifact (and as docs/overview.png with -update-screenshot; the README's docs/dashboard.png comes from allinone).
func TestScreenshotAfterQuickstart(t *testing.T) {
	s := allinonetest.Start(t, allinone.Options{})
	login := s.AdminLogin()
	if _, err := quickstart.Run(bg, quickstart.Options{Stack: s, Yes: true}); err != nil {
		t.Fatal(err)
	}
	ctx := browsertest.New(t, 90*time.Second)
	if err := browsertest.SignIn(ctx, s.ServerURL(), login.User, login.Password); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800), chromedp.Navigate(s.ServerURL()+"/")); err != nil {
		t.Fatal(err)
	}
	for _, cell := range []string{"dev/abalone", "prod/abalone"} {
		text, err := browsertest.WaitText(ctx, `[data-component="`+cell+`"]`, "v1")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(text, "In service") {
			t.Fatalf("%s on the overview: %q", cell, text)
		}
	}
	kinds, err := browsertest.Eval[[]string](ctx, `Array.from(document.querySelectorAll('table.list tbody tr td:nth-child(4)')).map(function(e){return e.textContent.trim()})`)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(kinds, ",") != "rollback,deploy,promote,deploy" {
		t.Fatalf("recent releases on the overview, newest first: %v, want rollback, deploy, promote, deploy", kinds)
	}
	// The page is still: no running duration, no hover.
	if err := chromedp.Do(ctx, chromedp.MouseEvent("mouseMoved", 0, 0)); err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 1280 || b.Dy() != 800 {
		t.Fatalf("the screenshot is %dx%d, want 1280x800", b.Dx(), b.Dy())
	}
	dir := browsertest.ArtifactsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "sagedeploy-quickstart-overview.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("overview after the quickstart: %s", path)
	if *updateScreenshot {
		if err := os.WriteFile(docsScreenshot, shot, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s (%d bytes)", docsScreenshot, len(shot))
	}
}
