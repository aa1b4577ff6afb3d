package web_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/sagedeploy/sagedeploy/internal/browsertest"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// visibleModels lists the overview's model rows that are shown, in page order.
const visibleModels = `Array.prototype.filter.call(document.querySelectorAll('#overview tbody tr[data-model]'), function(tr){return !tr.hidden}).map(function(tr){return tr.getAttribute('data-model')})`

// TestBrowserOverviewWith200Models renders 200 models sorted naturally (bulk2 before bulk10),
// narrows them as one types in the filter (kept in the address), and filters without JavaScript
// through the query parameter.
func TestBrowserOverviewWith200Models(t *testing.T) {
	// Seed before the browser starts: its deadline is for browsing (seeding is slow under -race).
	e := servertest.Start(t, servertest.Options{Server: server.Options{StreamPoll: 200 * time.Millisecond}})
	for i := range 200 {
		e.Deploy("dev", fmt.Sprintf("bulk%d", i), 1, 1)
	}
	e.Deploy("prod", "bulk7", 1, 2)
	ctx := browsertest.New(t, 90*time.Second)
	must(t, browsertest.SignIn(ctx, e.URL, "admin", e.AdminPassword))
	must(t, chromedp.Do(ctx, chromedp.Navigate(e.URL+"/")))
	waitText(t, ctx, "#overview-count", "200 models")
	rows, err := browsertest.Eval[[]string](ctx, visibleModels)
	must(t, err)
	if len(rows) != 200 {
		t.Fatalf("%d model rows, want 200", len(rows))
	}
	for i, want := range []string{"bulk0", "bulk1", "bulk2", "bulk3"} {
		if rows[i] != want {
			t.Fatalf("rows start %v, want bulk0, bulk1, bulk2, bulk3 (natural order)", rows[:5])
		}
	}
	if rows[10] != "bulk10" || rows[199] != "bulk199" {
		t.Fatalf("row 10 is %s and row 199 is %s, want bulk10 and bulk199", rows[10], rows[199])
	}
	waitText(t, ctx, `[data-component="prod/bulk7"]`, "2 ×")

	// Typing narrows the rows at once, without a reload, and the address keeps the query.
	markLoad(t, ctx)
	// "/" puts the cursor in the filter; typing narrows the rows.
	must(t, chromedp.Do(ctx, chromedp.KeyEvent("/")))
	if focused, err := browsertest.Eval[string](ctx, `document.activeElement.id`); err != nil || focused != "model-filter" {
		t.Fatalf("after pressing / the focus is on %q, want the model filter", focused)
	}
	if v, _ := browsertest.Eval[string](ctx, `document.querySelector('#model-filter').value`); v != "" {
		t.Fatalf("after pressing / the filter says %q, want it empty", v)
	}
	must(t, chromedp.Do(ctx, chromedp.KeyEvent("bulk19")))
	shown, err := browsertest.WaitFor(ctx, "the rows of bulk19", func() ([]string, bool, error) {
		v, err := browsertest.Eval[[]string](ctx, visibleModels)
		return v, err == nil && len(v) == 11, nil
	})
	must(t, err)
	if shown[0] != "bulk19" || shown[1] != "bulk190" || shown[10] != "bulk199" {
		t.Fatalf("filtered rows: %v", shown)
	}
	loc, err := chromedp.Run(ctx, chromedp.Location())
	must(t, err)
	if u, _ := url.Parse(loc); u.Query().Get("q") != "bulk19" {
		t.Fatalf("the address after filtering is %s, want ?q=bulk19", loc)
	}
	waitText(t, ctx, "#overview-count", "11 of 200 models")
	// Clearing the filter brings every row back.
	must(t, chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#model-filter"), strings.Repeat(kb.Backspace, 6))))
	waitText(t, ctx, "#overview-count", "200 models")
	_, err = browsertest.WaitFor(ctx, "all 200 rows back", func() (int, bool, error) {
		v, err := browsertest.Eval[[]string](ctx, visibleModels)
		return len(v), err == nil && len(v) == 200, nil
	})
	must(t, err)
	sameLoad(t, ctx, "overview")

	// The query parameter filters on the server too (a plain GET form without JavaScript, a
	// shared link); the matching is case-insensitive.
	for q, want := range map[string]int{"BULK15": 11, "bulk199": 1} {
		must(t, chromedp.Do(ctx, chromedp.Navigate(e.URL+"/?q="+url.QueryEscape(q))))
		waitText(t, ctx, "#overview-count", "of 200 models")
		n, err := browsertest.Eval[int](ctx, `document.querySelectorAll('#overview tbody tr[data-model]').length`)
		must(t, err)
		if n != want {
			t.Errorf("/?q=%s renders %d model rows, want %d", q, n, want)
		}
		if v, _ := browsertest.Eval[string](ctx, `document.querySelector('#model-filter').value`); v != q {
			t.Errorf("/?q=%s: the filter box says %q", q, v)
		}
	}
	must(t, chromedp.Do(ctx, chromedp.Navigate(e.URL+"/?q=nothing-like-this")))
	waitText(t, ctx, "#no-match", "No model name contains")
}
