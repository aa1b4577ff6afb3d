package server_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
	"github.com/sagedeploy/sagedeploy/releases/store"
)

// viewWorld is a release server with three environments and what a team sees on a busy day: a
// model behind in staging, a failed deploy, a release running, one waiting at prod's gate, a
// drifted endpoint.
type viewWorld struct {
	e                 *servertest.Env
	running, failed   releases.Release
	pending, firstRun releases.Release
}

func newViewWorld(t *testing.T) viewWorld {
	t.Helper()
	e := servertest.Start(t, servertest.Options{Environments: []releases.Environment{
		{Name: "dev", Kind: "local", EndpointURL: "http://127.0.0.1:4566", Position: 0},
		{Name: "staging", Kind: "sagemaker", Region: "eu-west-1", Account: "123456789012", Position: 1},
		{Name: "prod", Kind: "sagemaker", Region: "eu-west-1", Account: "123456789012", Position: 2, RequiresApproval: true},
	}})
	w := viewWorld{e: e}
	ctx := context.Background()
	for v := 1; v <= 3; v++ {
		e.Deploy("dev", "abalone", v, 1)
	}
	e.Deploy("staging", "abalone", 2, 2)
	e.Deploy("prod", "abalone", 1, 3)
	e.Deploy("dev", "churn", 1, 1)
	e.Deploy("staging", "churn", 1, 1)
	var err error
	if w.failed, err = e.Client("staging").StartRelease(ctx, releases.ReleaseStart{Environment: "staging", Model: "churn", Kind: releases.KindDeploy,
		Version: releases.Version{Number: 2}, InstanceCount: 1, Trigger: releases.Trigger{User: "ann"}}); err != nil {
		t.Fatal(err)
	}
	if w.failed, err = e.Client("staging").FinishRelease(ctx, w.failed.ID, releases.ReleaseFinish{Status: releases.StatusFailed,
		Reason: releases.ReasonRolledBack, FailureReason: "health checks failed; SageMaker rolled back"}); err != nil {
		t.Fatal(err)
	}
	if w.running, err = e.Client("dev").StartRelease(ctx, releases.ReleaseStart{Environment: "dev", Model: "churn", Kind: releases.KindScale,
		Version: releases.Version{Number: 1}, InstanceCount: 4, Trigger: releases.Trigger{User: "bob"}}); err != nil {
		t.Fatal(err)
	}
	if w.pending, err = e.Client("prod").StartRelease(ctx, releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindPromote,
		Version: releases.Version{Number: 2}, PreviousVersion: &releases.Version{Number: 1}, Trigger: releases.Trigger{User: "bob"}}); err != nil {
		t.Fatal(err)
	}
	if w.firstRun, err = e.Client("prod").StartRelease(ctx, releases.ReleaseStart{Environment: "prod", Model: "churn", Kind: releases.KindPromote,
		Version: releases.Version{Number: 1}, Trigger: releases.Trigger{User: "bob"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Client("dev").ReportObservation(ctx, releases.Observation{Environment: "dev", Model: "abalone", EndpointName: "abalone-dev",
		EndpointStatus: "InService", Version: 2, InstanceType: "ml.m5.large", InstanceCount: 3}); err != nil {
		t.Fatal(err)
	}
	return w
}

// page fetches a dashboard page as user (a session made in the store) and returns its HTML.
func (w viewWorld) page(t *testing.T, user, path string) string {
	t.Helper()
	id := "views-session-" + user
	if _, _, err := w.e.Store.Session(context.Background(), server.HashToken(id)); err != nil {
		now := w.e.Store.Now()
		if err := w.e.Store.CreateSession(context.Background(), store.Session{IDHash: server.HashToken(id), Username: user, CSRF: "x", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, w.e.URL+path, nil)
	req.AddCookie(&http.Cookie{Name: "sagedeploy_session", Value: id})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d\n%s", path, resp.StatusCode, b)
	}
	return string(b)
}

// cell is the HTML of one overview cell, from its <td> to its </td>.
func cell(t *testing.T, html, env, model string) string {
	t.Helper()
	row := regexp.MustCompile(`(?s)<tr data-model="` + regexp.QuoteMeta(model) + `">.*?</tr>`).FindString(html)
	c := regexp.MustCompile(`(?s)<td data-env="` + regexp.QuoteMeta(env) + `">.*?</td>`).FindString(row)
	if c == "" {
		t.Fatalf("the overview has no cell of %s in %s:\n%s", model, env, row)
	}
	return c
}

func mustContain(t *testing.T, what, html string, want ...string) {
	t.Helper()
	for _, s := range want {
		if !strings.Contains(html, s) {
			t.Errorf("%s lacks %q:\n%s", what, s, html)
		}
	}
}

// The overview shows every component with the version its endpoint serves, beside it the release
// in progress or a failed last one, a first release on its way where nothing serves yet, the
// approvals waiting, and the insights: drift, freshness, cost per environment.
func TestOverviewShowsEveryComponentWithItsState(t *testing.T) {
	w := newViewWorld(t)
	html := w.page(t, "admin", "/")
	mustContain(t, "the overview", html, `id="overview-count" data-live>2 models across 3 environments</p>`,
		`id="approvals-callout">2 releases waiting for approval →</a>`, `<span class="count" id="pending-count">2</span>`)
	for _, tc := range []struct{ env, model, serves string }{
		{"dev", "abalone", "v3"}, {"staging", "abalone", "v2"}, {"prod", "abalone", "v1"}, {"dev", "churn", "v1"}, {"staging", "churn", "v1"},
	} {
		mustContain(t, tc.model+" in "+tc.env, cell(t, html, tc.env, tc.model), `href="/components/`+tc.env+`/`+tc.model+`"`,
			`data-serving title="the version the endpoint serves">`+tc.serves+`</span>`, `data-status="InService">In service</span>`)
	}
	mustContain(t, "dev/abalone", cell(t, html, "dev", "abalone"), `data-drift title="changed outside sagedeploy: version 3 → 2, instances 1 → 3"`)
	mustContain(t, "staging/abalone", cell(t, html, "staging", "abalone"), `data-freshness>staging is 1 version and 0 days behind dev</div>`)
	mustContain(t, "prod/abalone", cell(t, html, "prod", "abalone"), `data-release-state="pending">promote v2 <span class="badge tone-wait" data-status="pending">Awaiting approval</span>`)
	mustContain(t, "staging/churn", cell(t, html, "staging", "churn"),
		`class="cell-release failed" data-release-state="failed" title="health checks failed; SageMaker rolled back">last deploy v2 <span class="badge tone-bad" data-status="failed">Failed</span>`)
	mustContain(t, "dev/churn", cell(t, html, "dev", "churn"), `data-release-state="running">scale v1 to 4 <span class="badge tone-busy" data-status="running">Running</span>`)
	mustContain(t, "prod/churn", cell(t, html, "prod", "churn"), `href="/releases/`+w.firstRun.ID+`" data-component="prod/churn"`, `not serving yet`)
	mustContain(t, "the environment heads", html, `<div class="muted small">local SageMaker</div>`, `<div class="muted small">SageMaker · eu-west-1</div>`,
		`data-env-cost="dev">≈ $0/month</div>`, `data-env-cost="prod">≈ $`)
	mustContain(t, "recent releases", html, `<tr data-release="`+w.firstRun.ID+`">`, `<span class="muted small reason" data-reason="rolled-back">`)

	filtered := w.page(t, "admin", "/?q=CHU")
	mustContain(t, "the filtered overview", filtered, `id="overview-count" data-live>1 of 2 models across 3 environments</p>`, `<tr data-model="churn">`)
	if strings.Contains(filtered, `<tr data-model="abalone">`) {
		t.Error("the overview filtered by CHU shows abalone")
	}
}

// A cell shows what changed since the page was last shown: the cells the server keeps rendered
// are found by what they show, so a new version or a finished release is never hidden by an older
// rendering.
func TestOverviewFollowsChanges(t *testing.T) {
	w := newViewWorld(t)
	before := cell(t, w.page(t, "admin", "/"), "dev", "churn")
	mustContain(t, "dev/churn before", before, `>v1</span>`, `scale v1 to 4`)
	if _, err := w.e.Client("dev").FinishRelease(context.Background(), w.running.ID, releases.ReleaseFinish{Status: releases.StatusSucceeded, InstanceCount: 4}); err != nil {
		t.Fatal(err)
	}
	w.e.Deploy("dev", "churn", 2, 4)
	after := cell(t, w.page(t, "admin", "/"), "dev", "churn")
	mustContain(t, "dev/churn after", after, `>v2</span>`, `<span data-instances>4</span> × ml.m5.large`)
	if strings.Contains(after, "cell-release") {
		t.Errorf("dev/churn still shows a release in progress:\n%s", after)
	}
}

// A component page shows the version it serves, its history with a restore for each earlier
// version (for a deployer, not a viewer), its releases and its drift with the ways out.
func TestComponentPageShowsItsHistory(t *testing.T) {
	w := newViewWorld(t)
	html := w.page(t, "admin", "/components/dev/abalone")
	mustContain(t, "dev/abalone", html, `<div class="big" id="current-version">v3</div>`,
		`<tr data-version="3">`, `<td><strong>v3</strong> <span class="badge tone-ok">current</span></td>`,
		`<tr data-version="2">`, `data-confirm="Restore v2 of abalone in dev?"`, `data-restore="1"`,
		`id="rollback-form" data-confirm="Roll abalone in dev back to v2?"`, `Promote v3 to staging</button>`,
		`<li data-field="version">version: recorded <strong>3</strong>, endpoint has <strong>2</strong></li>`,
		`id="adopt">Adopt what the endpoint serves (v2)</button>`, `id="redeploy">Redeploy the recorded v3</button>`,
		`<div id="component-releases" data-live>`, `href="/releases?environment=dev&model=abalone">all →</a>`)
	if n := strings.Count(html, `<tr data-release="`); n != 3 {
		t.Errorf("the component page lists %d releases, want its 3 deploys", n)
	}
	w.e.AddUser("vera", "viewer")
	viewer := w.page(t, "vera", "/components/dev/abalone")
	mustContain(t, "dev/abalone for a viewer", viewer, `<tr data-version="2">`, `Your role (viewer) can look but not change`)
	for _, absent := range []string{`data-restore=`, `id="rollback"`, `id="adopt"`} {
		if strings.Contains(viewer, absent) {
			t.Errorf("a viewer's component page has %s", absent)
		}
	}
}

// The release page states what a release did; one waiting at a gate shows what would change.
func TestReleasePageStatesTheRelease(t *testing.T) {
	w := newViewWorld(t)
	failed := w.page(t, "admin", "/releases/"+w.failed.ID)
	mustContain(t, "the failed release", failed, `<h1>Deploy of churn v2 in staging</h1>`, `data-status="failed"><span class="badge tone-bad" data-status="failed">Failed</span>`,
		`<strong>Failed</strong><span id="release-reason" data-reason="rolled-back" > (`, `<span id="failure-reason">health checks failed; SageMaker rolled back</span>`)
	pending := w.page(t, "admin", "/releases/"+w.pending.ID)
	mustContain(t, "the pending promotion", pending, `id="approval"`, `<td data-side="now">v1</td>`, `<td data-side="proposed">v2 <span class="change-note">(changes)</span></td>`,
		`<dd>v2 <span class="muted">(was v1)</span></dd>`)
}
