package server_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/sagedeploy/sagedeploy/releases"
	"github.com/sagedeploy/sagedeploy/releases/server/servertest"
)

// The message after an approval ("Approved: …") is shown by the page the browser is sent to, even
// when the old page's live refresh — set off by the approval itself — fetches the page first.
func TestLiveRefreshLeavesTheFlashForThePage(t *testing.T) {
	e := servertest.Start(t, servertest.Options{})
	e.Deploy("dev", "abalone", 4, 1)
	r, err := e.Client("prod").StartRelease(bg, releases.ReleaseStart{Environment: "prod", Model: "abalone", Kind: releases.KindPromote,
		Version: releases.Version{Number: 4}, Trigger: releases.Trigger{Type: "pipeline", PipelineID: "build-981"}})
	if err != nil || r.Status != releases.StatusPending {
		t.Fatalf("pending promotion: %+v, %v", r, err)
	}
	b := newBrowserlessSession(t, e, "admin", e.AdminPassword)
	b.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp := b.form("/releases/"+r.ID+"/approve", url.Values{"csrf": {b.csrf}}.Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("approve: HTTP %d", resp.StatusCode)
	}
	target := resp.Header.Get("Location")
	live := b.do("GET", target, "", map[string]string{"X-Live": "1"})
	if live.StatusCode != http.StatusOK {
		t.Fatalf("live refresh: HTTP %d", live.StatusCode)
	}
	if page := b.get(target); !strings.Contains(page, `id="flash">Approved: promote of abalone v4 into prod`) {
		t.Fatalf("the page after the live refresh lost the approval's message:\n%s", page)
	}
	if page := b.get(target); strings.Contains(page, `id="flash"`) {
		t.Error("the message shows again on the next page; it is one-time")
	}
}
