// Package browsertest drives Debian's headless Chromium (through chromedp) for the dashboard's
// browser tests: start a browser, sign in, wait for what the page shows, accept confirmations,
// save screenshots as test artifacts. It is test support shared by the packages whose tests need a
// real browser.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// DefaultChromium is Debian's Chromium.
const DefaultChromium = "/usr/bin/chromium"

// ChromiumPath is $SAGEDEPLOY_CHROMIUM, else Debian's /usr/bin/chromium.
func ChromiumPath() string {
	if p := os.Getenv("SAGEDEPLOY_CHROMIUM"); p != "" {
		return p
	}
	return DefaultChromium
}

// ArtifactsDir is where tests write screenshots: $SAGEDEPLOY_ARTIFACTS_DIR, else the temp dir.
func ArtifactsDir() string {
	if d := os.Getenv("SAGEDEPLOY_ARTIFACTS_DIR"); d != "" {
		return d
	}
	return os.TempDir()
}

// New starts a headless Chromium with a fresh profile and returns a tab's context, good for
// timeout; the browser stops when the test ends. A missing Chromium fails the test with what to
// install.
func New(t testing.TB, timeout time.Duration) context.Context {
	t.Helper()
	path := ChromiumPath()
	if st, err := os.Stat(path); err != nil || st.IsDir() {
		t.Fatalf("browser tests need Chromium at %s (install Debian's package: apt-get install chromium, or set SAGEDEPLOY_CHROMIUM): %v", path, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1440, 960),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithErrorf(func(f string, a ...any) { t.Logf("chromedp: "+f, a...) }))
	ctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	// Start the browser now, so that a broken install fails here with a clear message.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	return ctx
}

// AcceptDialogs answers every confirm() and alert() of the tab with OK, as a user who confirms
// a command does.
func AcceptDialogs(ctx context.Context) {
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
}

// SignIn fills the dashboard's sign-in form at baseURL and waits for the signed-in page.
func SignIn(ctx context.Context, baseURL, user, password string) error {
	err := chromedp.Do(ctx,
		chromedp.Navigate(strings.TrimRight(baseURL, "/")+"/login"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SetValue(chromedp.CSS("#username"), user),
		chromedp.SetValue(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#sign-in")),
	)
	if err != nil {
		return fmt.Errorf("fill the sign-in form: %w", err)
	}
	who, err := WaitText(ctx, "#whoami, #login-error", "")
	if err != nil {
		return fmt.Errorf("sign in as %s: %w", user, err)
	}
	if who != user {
		return fmt.Errorf("sign in as %s: the dashboard answered %q", user, who)
	}
	return nil
}

// Eval evaluates a JavaScript expression in the page.
func Eval[T any](ctx context.Context, expr string) (T, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// WaitText polls until an element matching the CSS selector exists and its text contains want,
// and returns that text. It returns an error when ctx ends first, with the last text seen.
func WaitText(ctx context.Context, selector, want string) (string, error) {
	expr := fmt.Sprintf(`(function(){var e=document.querySelector(%q);return e?e.textContent.trim():null})()`, selector)
	return WaitFor(ctx, fmt.Sprintf("text of %s containing %q", selector, want), func() (string, bool, error) {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[*string](expr))
		if err != nil || v == nil {
			return "", false, nil // navigation in progress, or not there yet
		}
		return *v, strings.Contains(*v, want), nil
	})
}

// WaitFor polls check every 50ms until it reports done or ctx ends.
func WaitFor[T any](ctx context.Context, what string, check func() (T, bool, error)) (T, error) {
	var last T
	for {
		v, ok, err := check()
		if err != nil {
			return v, err
		}
		last = v
		if ok {
			return v, nil
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("waiting for %s: %w (last seen: %v)", what, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Screenshot saves a PNG of the whole page as name under ArtifactsDir and returns its path.
func Screenshot(ctx context.Context, name string) (string, error) {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return "", fmt.Errorf("take screenshot %s: %w", name, err)
	}
	if len(png) == 0 {
		return "", errors.New("empty screenshot")
	}
	dir := ArtifactsDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return "", fmt.Errorf("write screenshot: %w", err)
	}
	return path, nil
}
