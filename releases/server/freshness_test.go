package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

const day = 24 * time.Hour

// TestFreshnessThroughTheAPI: dev and prod serve v1 on day 0; dev gets v2 on day 1 and v3 on
// day 3; on day 10 prod is 2 versions and 9 days behind dev (v2 reached dev 9 days ago). A model
// both serve at the same version is up to date.
func TestFreshnessThroughTheAPI(t *testing.T) {
	clk := newClock()
	e := servertest.Start(t, servertest.Options{Now: clk.Now})
	e.Deploy("dev", "abalone", 1, 1)
	e.Deploy("prod", "abalone", 1, 1)
	e.Deploy("dev", "iris", 4, 1)
	e.Deploy("prod", "iris", 4, 1)
	clk.Advance(day)
	e.Deploy("dev", "abalone", 2, 1)
	clk.Advance(2 * day)
	e.Deploy("dev", "abalone", 3, 1)
	clk.Advance(7 * day)

	var out struct{ Freshness []releases.Freshness }
	r := e.Do("GET", "/api/v1/freshness", e.Admin(), nil)
	if r.Status != 200 {
		t.Fatalf("GET /api/v1/freshness: %s", r.Error())
	}
	r.JSON(t, &out)
	if len(out.Freshness) != 2 {
		t.Fatalf("freshness: %+v, want abalone and iris in prod", out.Freshness)
	}
	ab := out.Freshness[0]
	if ab.Model != "abalone" || ab.Environment != "prod" || ab.Upstream != "dev" || ab.Version != 1 || ab.UpstreamVer != 3 ||
		ab.VersionsBehind != 2 || ab.DaysBehind != 9 || ab.Text != "prod is 2 versions and 9 days behind dev" {
		t.Fatalf("abalone: %+v", ab)
	}
	if ir := out.Freshness[1]; ir.Model != "iris" || ir.VersionsBehind != 0 || ir.Text != "prod is up to date with dev" {
		t.Fatalf("iris: %+v", ir)
	}

	// The overview says it in prod's cell.
	if page := newBrowserlessSession(t, e, "admin", e.AdminPassword).get("/"); !strings.Contains(page, `<div class="cell-meta muted" data-freshness>prod is 2 versions and 9 days behind dev</div>`) {
		t.Errorf("the overview does not say how far prod is behind:\n%s", section(page, `<table id="overview">`, `</table>`))
	}
	// The same through the client a CLI uses, with prod's token and one model.
	got, err := e.Client("prod").Freshness(bg, "abalone")
	if err != nil || len(got) != 1 || got[0].Text != ab.Text {
		t.Fatalf("client Freshness(abalone) with prod's token: %+v, %v", got, err)
	}
	// Promoting v3 catches prod up.
	e.Deploy("prod", "abalone", 3, 1)
	got, err = e.Client("prod").Freshness(bg, "abalone")
	if err != nil || len(got) != 1 || got[0].VersionsBehind != 0 || got[0].BehindSince != nil {
		t.Fatalf("after prod got v3: %+v, %v", got, err)
	}
}
